"""Valuation: InVEST's NPV of a stock change, the value of a stock, and price units."""

from decimal import Decimal

import pytest

from accounting.methods import (
    Money,
    ValuationTerms,
    carbon_method,
    discount_sum,
    npv_of_change,
    parcel_carbon,
    parcels_total,
    value_of_stock,
)


def test_npv_matches_invest_formula_by_hand():
    # price 43 per t C, r = 7 %, c = 0 %, n = 30, Δc = 1000 t C:
    # 43 × 1000 / 30 × Σ_{t=0}^{29} 1.07^−t; Σ = (1 − 1.07^−30) / (1 − 1/1.07) = 0.868633 / 0.0654206 = 13.277674…
    series = sum(1.07 ** -t for t in range(30))
    assert series == pytest.approx(13.277674, abs=1e-6)
    expected = 43 * 1000 / 30 * series
    terms = ValuationTerms(Decimal("43"), "USD", discount_rate_pct=Decimal("7"), price_change_pct=Decimal("0"))
    npv = npv_of_change(1000.0, terms, 30)
    assert npv.currency == "USD"
    assert npv.amount == Decimal(repr(expected)).quantize(Decimal("0.01"))
    assert npv.amount.as_tuple().exponent == -2


def test_zero_rates_give_price_times_change_not_n_fold():
    # r = c = 0: each term of the series is 1, the sum is n, value = V × Δc (InVEST PR #492 was off by n here)
    assert discount_sum(30, 0, 0) == 30
    npv = npv_of_change(250.0, ValuationTerms(Decimal("43"), "CNY"), 30)
    assert npv == Money(Decimal("10750.00"), "CNY")


def test_price_change_and_discount_both_compound():
    # n = 2: Σ = 1 + 1/(1.05 × 1.02) = 1.933706816…; V/n × Σ × Δc = 100/2 × 1.9337068 × 10 = 966.85
    npv = npv_of_change(10.0, ValuationTerms(Decimal(100), "USD", Decimal(5), Decimal(2)), 2)
    assert npv.amount == Decimal("966.85")


def test_negative_change_is_a_negative_value():
    assert npv_of_change(-10.0, ValuationTerms(Decimal(43), "USD"), 10).amount == Decimal("-430.00")


def test_price_per_t_co2e_converts_by_44_over_12():
    # 10 CNY per t CO2e = 36.67 CNY per t C; a 12 t C stock = 44 t CO2e = 440 CNY
    terms = ValuationTerms.from_price_per_t_co2e(Decimal(10), "CNY")
    assert terms.price_per_t_c == pytest.approx(Decimal("36.66666666666666666666666666666667"))
    assert value_of_stock(12.0, terms) == Money(Decimal("440.00"), "CNY")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"currency": "usd"}, "ISO 4217"),
    ({"price_per_t_c": Decimal(-1)}, "price_per_t_c"),
    ({"discount_rate_pct": Decimal(-100)}, "discount_rate_pct"),
])
def test_bad_terms_are_refused(kwargs, fragment):
    base = {"price_per_t_c": Decimal(43), "currency": "USD"}
    with pytest.raises(ValueError, match=fragment):
        ValuationTerms(**{**base, **kwargs})


def test_years_must_run_forward():
    with pytest.raises(ValueError, match="years"):
        npv_of_change(1.0, ValuationTerms(Decimal(1), "USD"), 0)


def test_parcel_stock_value_and_totals_keep_the_currency():
    pools = [{"lucode": 1, "c_above": 100, "c_below": 0, "c_soil": 0, "c_dead": 0}]
    method = carbon_method("pool_table", {"pools": pools})
    terms = ValuationTerms(Decimal("50.5"), "CNY")
    a = parcel_carbon(method, area_ha_by_class={1: 2.0}, valuation=terms)
    b = parcel_carbon(method, area_ha_by_class={1: 0.5}, valuation=terms)
    # 200 t C × 50.5 = 10 100.00; 50 t C × 50.5 = 2 525.00
    assert a.stock_value == Money(Decimal("10100.00"), "CNY")
    assert parcels_total([a, b]).stock_value == Money(Decimal("12625.00"), "CNY")
    with pytest.raises(ValueError, match="cannot add"):
        parcels_total([a, parcel_carbon(method, area_ha_by_class={1: 1.0}, valuation=ValuationTerms(1, "USD"))])
