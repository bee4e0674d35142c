"""IPCC 2006 Vol 1 Ch 3 uncertainty: Approach 1 worked examples, Approach 2 reproducibility and agreement."""

import math

import numpy as np
import pytest

from accounting.methods import (
    Factor,
    StockTerm,
    approach1_interval,
    carbon_method,
    interval_from_samples,
    monte_carlo_totals,
    parcel_carbon,
    parcel_seed,
    parcels_total,
    product_uncertainty_pct,
    sum_uncertainty_pct,
)


def test_product_worked_example_36_46_pct():
    # √(5² + 20² + 30² + 2²) = √1329 = 36.4555…
    assert product_uncertainty_pct([5, 20, 30, 2]) == pytest.approx(math.sqrt(1329))
    assert round(product_uncertainty_pct([5, 20, 30, 2]), 2) == 36.46


def test_sum_worked_example_14_91_pct():
    # √((10 % × 100)² + (40 % × 50)²) / 150 = √(100 + 400) / 150 = 22.3607 / 150 = 14.907 %
    assert sum_uncertainty_pct([100, 50], [10, 40]) == pytest.approx(100 * math.sqrt(500) / 150)
    assert round(sum_uncertainty_pct([100, 50], [10, 40]), 2) == 14.91


def test_sum_with_zero_total_is_refused_not_divided():
    with pytest.raises(ValueError, match="unbounded"):
        sum_uncertainty_pct([10, -10], [5, 5])
    assert sum_uncertainty_pct([0, 0], [5, 5]) == 0.0


def _term(value_t_c, *factor_pcts):
    factors = [Factor("area_ha", 1.0, "ha", 0.0, "area")]
    factors += [Factor(f"p{i}", 1.0, "1", u, f"p{i}") for i, u in enumerate(factor_pcts)]
    factors[0] = Factor("area_ha", value_t_c, "ha", 0.0, "area")
    return StockTerm(1, "c_above", tuple(factors))


def test_approach1_interval_of_the_product_example():
    interval = approach1_interval([_term(100.0, 5, 20, 30, 2)])
    assert interval.lower_t_c == pytest.approx(100 - math.sqrt(1329))
    assert interval.upper_t_c == pytest.approx(100 + math.sqrt(1329))
    assert interval.plus_pct == pytest.approx(36.4555, abs=1e-4)


def test_parcel_totals_use_sum_propagation():
    """Parcel A: 1 ha × 100 t C/ha ±10 %; parcel B: 1 ha × 50 t C/ha ±40 % → total 150 ± 14.91 %."""
    pools = [{"lucode": 1, "c_above": 100, "c_below": 0, "c_soil": 0, "c_dead": 0}]
    a = parcel_carbon(carbon_method("pool_table", {"pools": pools, "uncertainty_pct": {"c_above": 10}}),
                      area_ha_by_class={1: 1.0})
    pools_b = [{"lucode": 1, "c_above": 50, "c_below": 0, "c_soil": 0, "c_dead": 0}]
    b = parcel_carbon(carbon_method("pool_table", {"pools": pools_b, "uncertainty_pct": {"c_above": 40}}),
                      area_ha_by_class={1: 1.0})
    total = parcels_total([a, b])
    assert total.stock_t_c == 150
    assert total.interval.plus_pct == pytest.approx(100 * math.sqrt(500) / 150)
    assert total.interval.minus_pct == pytest.approx(100 * math.sqrt(500) / 150)


# --- Approach 2 ----------------------------------------------------------------------------------------------------

def test_monte_carlo_is_reproducible_with_a_seed():
    terms = [_term(100.0, 10, 10)]
    first = monte_carlo_totals([terms], seed=42, iterations=5_000)[0]
    again = monte_carlo_totals([terms], seed=42, iterations=5_000)[0]
    other = monte_carlo_totals([terms], seed=43, iterations=5_000)[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_parcel_seed_is_the_sha256_of_run_seed_and_parcel_key():
    """printf '20260101:510727/F-1' | sha256sum | cut -c1-16  ->  57df2059f27262e9"""
    assert parcel_seed(20260101, "510727/F-1") == 0x57DF2059F27262E9
    assert parcel_seed(20260101, "510727/F-2") != parcel_seed(20260101, "510727/F-1")
    assert parcel_seed(20260102, "510727/F-1") != parcel_seed(20260101, "510727/F-1")


def test_monte_carlo_close_to_approach1_for_a_simple_product():
    """100 t C × (1 ± 10 %) × (1 ± 10 %): Approach 1 gives ±√200 = ±14.142 %.

    Tolerance 0.5 percentage points of the estimate, because: (1) the product of two normals is slightly skewed;
    the percentiles differ from the linearised ones by about σ₁σ₂ relative, with σ = 10 %/1.96 = 5.1 %, i.e.
    ≈ 0.26 % of the estimate; (2) the sampling error of a 2.5th percentile with N = 200 000 is
    √(p(1 − p)/N) / f(x_p) ≈ 4.9e-4 / (0.058/7.2) ≈ 0.06 t here, under 0.1 %. Together well within 0.5 points.
    """
    terms = [_term(100.0, 10, 10)]
    samples = monte_carlo_totals([terms], seed=2024, iterations=200_000)[0]
    mc = interval_from_samples(100.0, samples)
    a1 = approach1_interval(terms)
    assert mc.approach == "approach2"
    assert mc.lower_t_c == pytest.approx(a1.lower_t_c, abs=0.5)
    assert mc.upper_t_c == pytest.approx(a1.upper_t_c, abs=0.5)


def test_parcel_approach2_needs_a_seed_and_is_reproducible():
    pools = [{"lucode": 1, "c_above": 100, "c_below": 20, "c_soil": 50, "c_dead": 5},
             {"lucode": 2, "c_above": 10, "c_below": 5, "c_soil": 40, "c_dead": 1}]
    method = carbon_method("pool_table", {"pools": pools, "uncertainty_pct": {"c_above": 20, "c_soil": 30, "area": 5}})
    kwargs = dict(area_ha_by_class={1: 3.0, 2: 1.0}, alt_area_ha_by_class={1: 2.0, 2: 2.0}, years=(2020, 2030),
                  uncertainty="approach2")
    with pytest.raises(ValueError, match="seed"):
        parcel_carbon(method, **kwargs)
    one = parcel_carbon(method, seed=7, **kwargs)
    two = parcel_carbon(method, seed=7, **kwargs)
    assert one == two
    assert one.interval.lower_t_c < one.stock_t_c < one.interval.upper_t_c
    # the change keeps the correlation of the shared densities, so it is narrower than independent propagation
    a1 = parcel_carbon(method, **{**kwargs, "uncertainty": "approach1"})
    mc_width = one.change_interval.upper_t_c - one.change_interval.lower_t_c
    a1_width = a1.change_interval.upper_t_c - a1.change_interval.lower_t_c
    assert mc_width < a1_width
