"""Stock difference between epochs (IPCC 2006 Vol 4 Eq 2.5), with and without a transition matrix."""

import pytest

from accounting.methods import (
    CO2_PER_C,
    InconsistentInputError,
    carbon_method,
    parcel_carbon,
    parcels_total,
    stock_difference,
)

# densities: class 1 = 100 t C/ha (all above-ground), class 2 = 20 t C/ha
POOLS = [{"lucode": 1, "c_above": 100, "c_below": 0, "c_soil": 0, "c_dead": 0},
         {"lucode": 2, "c_above": 10, "c_below": 5, "c_soil": 5, "c_dead": 0}]


def test_plain_difference_of_totals():
    change = stock_difference(1100.0, 780.0, 10)
    assert change.change_t_c == -320.0
    assert change.annual_change_t_c_per_yr == -32.0
    # −32 t C/yr × 44/12 = −117.333… t CO2/yr gained, i.e. +117.333 t CO2/yr emitted in IPCC's sign
    assert change.annual_change_co2e_t_per_yr == pytest.approx(-32 * 44 / 12)
    assert change.net_emissions_co2e_t_per_yr == pytest.approx(117.33333333333333)


def test_transition_matrix_breaks_the_change_down():
    method = carbon_method("pool_table", {"pools": POOLS})
    result = parcel_carbon(
        method, area_ha_by_class={1: 10.0, 2: 5.0}, alt_area_ha_by_class={1: 6.0, 2: 9.0}, years=(2020, 2030),
        transition_ha={(1, 1): 6.0, (1, 2): 4.0, (2, 2): 5.0})
    # base 10 × 100 + 5 × 20 = 1100; alt 6 × 100 + 9 × 20 = 780; 4 ha from 1 to 2: 4 × (20 − 100) = −320
    assert result.stock_t_c == 1100.0
    assert result.alternate.stock_t_c == 780.0
    assert result.change.change_t_c == -320.0
    assert result.change.change_t_c_by_transition == {(1, 1): 0.0, (1, 2): -320.0, (2, 2): 0.0}
    assert result.change.annual_change_co2e_t_per_yr == pytest.approx(-32.0 * CO2_PER_C)
    totals = parcels_total([result, result])
    assert totals.change_t_c == -640.0
    assert totals.annual_change_t_c_per_yr == -64.0


def test_transition_matrix_must_match_the_areas():
    method = carbon_method("pool_table", {"pools": POOLS})
    with pytest.raises(InconsistentInputError, match=r"transitions from class 1 sum to 9\.0 ha"):
        parcel_carbon(method, area_ha_by_class={1: 10.0, 2: 5.0}, alt_area_ha_by_class={1: 6.0, 2: 9.0},
                      years=(2020, 2030), transition_ha={(1, 1): 6.0, (1, 2): 3.0, (2, 2): 5.0})
