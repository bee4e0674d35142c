"""The per-parcel entry point the run engine calls, and totals over parcels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InconsistentInputError, gettext_noop
from .ipcc_tier1 import ParameterUse, ipcc_tier1_terms
from .pool_table import check_areas, pool_table_from_rows, pool_table_terms
from .spec import method_parameters_hash, validate_method_parameters
from .stock_change import StockChange, check_transition_matrix, check_years, transition_change_t_c
from .terms import StockTerm, stock_t_c_by_class, stock_t_c_by_pool
from .uncertainty import (
    APPROACHES,
    MONTE_CARLO_ITERATIONS,
    Interval95,
    approach1_difference,
    approach1_interval,
    combine_intervals,
    interval_from_samples,
    monte_carlo_totals,
)
from .units import CO2_PER_C, POOLS
from .valuation import Money, ValuationTerms, npv_of_change, value_of_stock
from .volume_bcef import volume_bcef_terms


@dataclass(frozen=True)
class CarbonMethod:
    """A validated method: kind, normalised parameters and their hash (what a MethodVersion stores)."""

    kind: str
    parameters: Mapping[str, Any]
    parameters_hash: str


def carbon_method(kind: str, parameters: Mapping[str, Any]) -> CarbonMethod:
    """Validate once (MethodParameterError naming every bad parameter) and hash; reuse for every parcel."""
    normalised = validate_method_parameters(kind, parameters)
    return CarbonMethod(kind, normalised, method_parameters_hash(kind, normalised))


@dataclass(frozen=True)
class CarbonStock:
    """The stock of one epoch."""

    area_ha: float
    area_ha_by_class: Mapping[int, float]
    stock_t_c_by_pool: Mapping[str, float]
    stock_t_c_by_class: Mapping[int, float]
    stock_t_c: float
    interval: Interval95

    @property
    def stock_co2e_t(self) -> float:
        return self.stock_t_c * CO2_PER_C


@dataclass(frozen=True)
class ParcelCarbon:
    """Everything the method computes for one parcel. Carbon in t C; CO2e via the *_co2e_t properties."""

    method_kind: str
    parameters_hash: str
    baseline: CarbonStock
    alternate: CarbonStock | None = None
    change: StockChange | None = None
    change_interval: Interval95 | None = None
    stock_value: Money | None = None
    alt_stock_value: Money | None = None
    npv_of_change: Money | None = None
    parameters_used: tuple[ParameterUse, ...] = ()

    # the fields a caller reaches for most, flat
    @property
    def area_ha(self) -> float:
        return self.baseline.area_ha

    @property
    def stock_t_c_by_pool(self) -> Mapping[str, float]:
        return self.baseline.stock_t_c_by_pool

    @property
    def stock_t_c(self) -> float:
        return self.baseline.stock_t_c

    @property
    def stock_co2e_t(self) -> float:
        return self.baseline.stock_co2e_t

    @property
    def interval(self) -> Interval95:
        return self.baseline.interval

    @property
    def uses_unconfirmed_defaults(self) -> bool:
        return any(use.unconfirmed for use in self.parameters_used)


def _terms(method: CarbonMethod, areas, categories, attributes) -> tuple[tuple[StockTerm, ...], tuple]:
    p = method.parameters
    if method.kind == "pool_table":
        return pool_table_terms(pool_table_from_rows(p["pools"]), areas, uncertainty_pct=p["uncertainty_pct"]), ()
    if method.kind == "ipcc_tier1":
        if categories is None:
            raise InconsistentInputError(gettext_noop("ipcc_tier1 needs ipcc_category_by_class (from the land-cover "
                                                      "legend)"))
        return ipcc_tier1_terms(p, areas, categories)
    if method.kind == "volume_bcef":
        return volume_bcef_terms(p, areas, attributes)
    raise AssertionError(f"no calculation for kind {method.kind!r}")  # spec and dispatch out of step


def _stock(areas: Mapping[int, float], terms, interval: Interval95) -> CarbonStock:
    by_pool = stock_t_c_by_pool(terms)
    return CarbonStock(
        area_ha=sum(areas.values()),
        area_ha_by_class=dict(sorted(areas.items())),
        stock_t_c_by_pool=by_pool,
        stock_t_c_by_class=stock_t_c_by_class(terms),
        stock_t_c=sum(by_pool[p] for p in POOLS),
        interval=interval,
    )


def parcel_carbon(
    method: CarbonMethod,
    *,
    area_ha_by_class: Mapping[int, float],
    ipcc_category_by_class: Mapping[int, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    alt_area_ha_by_class: Mapping[int, float] | None = None,
    transition_ha: Mapping[tuple[int, int], float] | None = None,
    years: tuple[int, int] | None = None,
    valuation: ValuationTerms | None = None,
    uncertainty: str = "approach1",
    seed: int | None = None,
    iterations: int = MONTE_CARLO_ITERATIONS,
) -> ParcelCarbon:
    """Stock of one parcel, and where asked its alternate stock, change, value and NPV. See the package docstring."""
    if uncertainty not in APPROACHES:
        raise ValueError(f"uncertainty must be one of {list(APPROACHES)}, got {uncertainty!r}")
    if uncertainty == "approach2" and seed is None:
        raise ValueError("approach2 (Monte Carlo) needs a seed so the interval is reproducible")
    if transition_ha is not None and alt_area_ha_by_class is None:
        raise InconsistentInputError(gettext_noop("transition_ha needs alt_area_ha_by_class as well"))
    if years is not None and alt_area_ha_by_class is None:
        raise InconsistentInputError(gettext_noop("years are only used with alt_area_ha_by_class (a change between "
                                                  "epochs)"))
    if alt_area_ha_by_class is not None and years is None:
        raise InconsistentInputError(gettext_noop("alt_area_ha_by_class needs years=(baseline_year, alt_year)"))
    areas = check_areas(area_ha_by_class)
    base_terms, used = _terms(method, areas, ipcc_category_by_class, attributes)
    alt_terms = alt_areas = None
    if alt_area_ha_by_class is not None:
        alt_areas = check_areas(alt_area_ha_by_class, name="alt_area_ha_by_class")
        alt_terms, alt_used = _terms(method, alt_areas, ipcc_category_by_class, attributes)
        used = used + tuple(u for u in alt_used if u not in used)

    if uncertainty == "approach1":
        base_interval = approach1_interval(base_terms)
        alt_interval = approach1_interval(alt_terms) if alt_terms is not None else None
        change_interval = approach1_difference(alt_interval, base_interval) if alt_interval else None
    else:
        estimates = [base_terms] + ([alt_terms] if alt_terms is not None else [])
        samples = monte_carlo_totals(estimates, seed=seed, iterations=iterations)
        base_total = sum(t.stock_t_c for t in base_terms)
        base_interval = interval_from_samples(base_total, samples[0])
        alt_interval = change_interval = None
        if alt_terms is not None:
            alt_total = sum(t.stock_t_c for t in alt_terms)
            alt_interval = interval_from_samples(alt_total, samples[1])
            change_interval = interval_from_samples(alt_total - base_total, samples[1] - samples[0])

    baseline = _stock(areas, base_terms, base_interval)
    alternate = change = None
    if alt_terms is not None:
        alternate = _stock(alt_areas, alt_terms, alt_interval)
        n = check_years(*years)
        by_transition = None
        if transition_ha is not None:
            transitions = {(int(a), int(b)): float(v) for (a, b), v in transition_ha.items()}
            check_transition_matrix(transitions, areas, alt_areas)
            density = {}
            for stock in (baseline, alternate):
                for code, stock_t_c in stock.stock_t_c_by_class.items():
                    density[code] = stock_t_c / stock.area_ha_by_class[code]  # t C / ha
            for code in {c for pair in transitions for c in pair}:
                density.setdefault(code, 0.0)  # a class with no area in either epoch only appears with 0 ha
            by_transition = transition_change_t_c(transitions, density)
        change = StockChange(baseline.stock_t_c, alternate.stock_t_c, n,
                             alternate.stock_t_c - baseline.stock_t_c, by_transition)

    stock_value = alt_value = npv = None
    if valuation is not None:
        stock_value = value_of_stock(baseline.stock_t_c, valuation)
        if change is not None:
            alt_value = value_of_stock(alternate.stock_t_c, valuation)
            npv = npv_of_change(change.change_t_c, valuation, change.years)
    return ParcelCarbon(method.kind, method.parameters_hash, baseline, alternate, change, change_interval,
                        stock_value, alt_value, npv, used)


@dataclass(frozen=True)
class CarbonTotals:
    """Sums over parcels. Intervals combine by IPCC Eq 3.2 (independent parcels; see combine_intervals)."""

    parcel_count: int
    area_ha: float
    area_ha_by_class: Mapping[int, float]
    stock_t_c_by_pool: Mapping[str, float]
    stock_t_c: float
    interval: Interval95 | None
    alt_stock_t_c_by_pool: Mapping[str, float] | None = None
    alt_stock_t_c: float | None = None
    alt_interval: Interval95 | None = None
    change_t_c: float | None = None
    change_interval: Interval95 | None = None
    years: int | None = None
    stock_value: Money | None = None
    alt_stock_value: Money | None = None
    npv_of_change: Money | None = None

    @property
    def stock_co2e_t(self) -> float:
        return self.stock_t_c * CO2_PER_C

    @property
    def annual_change_t_c_per_yr(self) -> float | None:
        return None if self.change_t_c is None else self.change_t_c / self.years

    @property
    def annual_change_co2e_t_per_yr(self) -> float | None:
        return None if self.change_t_c is None else self.change_t_c / self.years * CO2_PER_C


def _money_sum(values: list[Money | None]) -> Money | None:
    if not values or any(v is None for v in values):
        return None
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def parcels_total(parcels: Sequence[ParcelCarbon]) -> CarbonTotals:
    """Totals of a run: sums of areas, pools, stocks, changes and money (the parcels' rounded amounts, so the
    total equals the sum of the published rows). All parcels must agree on having an alternate epoch and on
    its years, and on the currency."""
    if not parcels:
        return CarbonTotals(0, 0.0, {}, dict.fromkeys(POOLS, 0.0), 0.0, None)
    with_alt = {p.alternate is not None for p in parcels}
    if len(with_alt) != 1:
        raise InconsistentInputError(gettext_noop("some parcels have an alternate epoch and some do not"))
    area_by_class: dict[int, float] = {}
    pools = dict.fromkeys(POOLS, 0.0)
    for p in parcels:
        for code, area in p.baseline.area_ha_by_class.items():
            area_by_class[code] = area_by_class.get(code, 0.0) + area
        for pool in POOLS:
            pools[pool] += p.baseline.stock_t_c_by_pool[pool]
    totals = dict(
        parcel_count=len(parcels),
        area_ha=sum(p.baseline.area_ha for p in parcels),
        area_ha_by_class=dict(sorted(area_by_class.items())),
        stock_t_c_by_pool=pools,
        stock_t_c=sum(p.baseline.stock_t_c for p in parcels),
        interval=combine_intervals([p.baseline.interval for p in parcels]),
        stock_value=_money_sum([p.stock_value for p in parcels]),
    )
    if with_alt == {True}:
        years = {p.change.years for p in parcels}
        if len(years) != 1:
            raise InconsistentInputError(gettext_noop("parcels have different years between epochs: %(years)s"),
                                         years=str(sorted(years)))
        alt_pools = dict.fromkeys(POOLS, 0.0)
        for p in parcels:
            for pool in POOLS:
                alt_pools[pool] += p.alternate.stock_t_c_by_pool[pool]
        totals.update(
            alt_stock_t_c_by_pool=alt_pools,
            alt_stock_t_c=sum(p.alternate.stock_t_c for p in parcels),
            alt_interval=combine_intervals([p.alternate.interval for p in parcels]),
            change_t_c=sum(p.change.change_t_c for p in parcels),
            change_interval=combine_intervals([p.change_interval for p in parcels]),
            years=years.pop(),
            alt_stock_value=_money_sum([p.alt_stock_value for p in parcels]),
            npv_of_change=_money_sum([p.npv_of_change for p in parcels]),
        )
    return CarbonTotals(**totals)
