"""Stock difference between two epochs (IPCC 2006 Vol 4 Ch 2 Eq 2.5): ΔC = (C_t2 − C_t1) / (t2 − t1).

Sign: `change_t_c` > 0 is a gain of carbon in the land (sequestration). IPCC inventories report the opposite sign
for CO2 (removals negative), given here as `net_emissions_co2e_t_per_yr` so neither reading needs guessing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InconsistentInputError, MissingClassError, gettext_noop
from .units import CO2_PER_C


@dataclass(frozen=True, slots=True)
class StockChange:
    baseline_stock_t_c: float
    alt_stock_t_c: float
    years: int
    change_t_c: float
    change_t_c_by_transition: Mapping[tuple[int, int], float] | None = None

    @property
    def annual_change_t_c_per_yr(self) -> float:
        return self.change_t_c / self.years

    @property
    def annual_change_co2e_t_per_yr(self) -> float:
        """Carbon gain as CO2, t CO2e/yr (positive = the land took CO2 up)."""
        return self.annual_change_t_c_per_yr * CO2_PER_C

    @property
    def net_emissions_co2e_t_per_yr(self) -> float:
        """IPCC reporting sign: emissions positive, removals negative."""
        return -self.annual_change_co2e_t_per_yr


def check_years(baseline_year: int, alt_year: int) -> int:
    """Years between epochs; refuses alt_year <= baseline_year."""
    if int(alt_year) != alt_year or int(baseline_year) != baseline_year:
        raise ValueError(f"years must be whole calendar years, got {baseline_year} and {alt_year}")
    n = int(alt_year) - int(baseline_year)
    if n <= 0:
        raise ValueError(f"alternate year {alt_year} must be after baseline year {baseline_year} (n = {n})")
    return n


def stock_difference(baseline_stock_t_c: float, alt_stock_t_c: float, years: int) -> StockChange:
    """Eq 2.5 on totals: change = alt − baseline, annual change = change / years."""
    if years <= 0:
        raise ValueError(f"years between epochs must be > 0, got {years}")
    return StockChange(baseline_stock_t_c, alt_stock_t_c, years, alt_stock_t_c - baseline_stock_t_c)


def check_transition_matrix(
    transition_ha: Mapping[tuple[int, int], float],
    area_ha_by_class: Mapping[int, float],
    alt_area_ha_by_class: Mapping[int, float],
    *,
    rel_tol: float = 1e-6,
    abs_tol_ha: float = 1e-6,
) -> None:
    """Row sums (from class a) must equal the baseline areas and column sums (to class b) the alternate areas."""
    rows: dict[int, float] = {}
    cols: dict[int, float] = {}
    for (a, b), area in transition_ha.items():
        if not math.isfinite(area) or area < 0:
            raise InconsistentInputError(gettext_noop("transition_ha[(%(a)s, %(b)s)] = %(area)s ha; expected a finite "
                                                      "area >= 0"), a=a, b=b, area=area)
        rows[a] = rows.get(a, 0.0) + area
        cols[b] = cols.get(b, 0.0) + area
    for name, sums, areas in (("baseline", rows, area_ha_by_class), ("alternate", cols, alt_area_ha_by_class)):
        for code in sorted(set(sums) | {int(k) for k in areas}):
            got, want = sums.get(code, 0.0), float(areas.get(code, 0.0))
            if not math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol_ha):
                if name == "baseline":
                    raise InconsistentInputError(
                        gettext_noop("transitions from class %(code)s sum to %(got)s ha but the baseline area of that "
                                     "class is %(want)s ha"), code=code, got=got, want=want)
                raise InconsistentInputError(
                    gettext_noop("transitions to class %(code)s sum to %(got)s ha but the alternate area of that class "
                                 "is %(want)s ha"), code=code, got=got, want=want)


def transition_change_t_c(
    transition_ha: Mapping[tuple[int, int], float],
    density_t_c_per_ha_by_class: Mapping[int, float],
) -> dict[tuple[int, int], float]:
    """Change per transition a → b: area_ha × (density_b − density_a), t C (ha × t C/ha). Unchanged land (a == b)
    contributes 0 by construction, as in InVEST. Raises MissingClassError for a class with no density."""
    missing = {c for (a, b), area in transition_ha.items() if area > 0 for c in (a, b)
               if c not in density_t_c_per_ha_by_class}
    if missing:
        raise MissingClassError(missing, where=gettext_noop("the densities of the method (transition matrix classes)"))
    return {
        (a, b): area * (density_t_c_per_ha_by_class[b] - density_t_c_per_ha_by_class[a])
        for (a, b), area in sorted(transition_ha.items()) if area > 0
    }
