"""A stock as a sum of products: the one shape every method reduces to, and what uncertainty works on.

Each method turns a parcel's class areas into `StockTerm`s, one per (class, pool):
    stock_t_c = Π factor.value, e.g. area_ha × agb_t_dm_per_ha × carbon_fraction   (ha × t d.m./ha × t C/t d.m. = t C)
Approach 1 (IPCC 2006 Vol 1 Ch 3, Eq 3.1 and 3.2) and Approach 2 (Monte Carlo) both read these factors, so the
interval always describes exactly the arithmetic that produced the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .units import POOLS, fraction_from_pct


@dataclass(frozen=True, slots=True)
class Factor:
    """One multiplicand of a stock term.

    `uncertainty_pct` is the half-width of its 95 % interval as a percent of `value` (IPCC's U).
    `key` names the underlying parameter: factors that share a key are one quantity and get the same draw in
    Monte Carlo (the same table value used for two classes is fully correlated); Approach 1 ignores keys and
    treats every factor as independent, as IPCC Eq 3.1/3.2 assume.
    """

    name: str
    value: float
    unit: str
    uncertainty_pct: float
    key: str


@dataclass(frozen=True, slots=True)
class StockTerm:
    """The stock of one pool in one land-cover class: the product of its factors, t C."""

    lucode: int
    pool: str
    factors: tuple[Factor, ...]

    @property
    def stock_t_c(self) -> float:
        return math.prod(f.value for f in self.factors)

    @property
    def uncertainty_pct(self) -> float:
        """IPCC Eq 3.1 for a product: U = √(Σ U_i²)."""
        return product_uncertainty_pct(f.uncertainty_pct for f in self.factors)


def product_uncertainty_pct(uncertainties_pct: Iterable[float]) -> float:
    """IPCC 2006 Vol 1 Ch 3 Eq 3.1: U_total = √(U_1² + U_2² + … ), each a percent half-width of the 95 % interval."""
    return math.sqrt(sum(u * u for u in uncertainties_pct))


def sum_uncertainty_pct(values: Iterable[float], uncertainties_pct: Iterable[float]) -> float:
    """IPCC 2006 Vol 1 Ch 3 Eq 3.2: U_total = √(Σ (U_i · x_i)²) / |Σ x_i|, percent.

    Raises ValueError when Σ x_i = 0 while some U_i · x_i ≠ 0 (the relative uncertainty is then unbounded;
    use `sum_half_width` for the absolute half-width). Returns 0 when every term is 0.
    """
    xs = list(values)
    us = list(uncertainties_pct)
    if len(xs) != len(us):
        raise ValueError(f"{len(xs)} values but {len(us)} uncertainties")
    half_width = sum_half_width(xs, us)
    total = sum(xs)
    if total == 0:
        if half_width == 0:
            return 0.0
        raise ValueError(f"sum of values is 0 with absolute half-width {half_width}: relative uncertainty unbounded")
    return 100.0 * half_width / abs(total)


def sum_half_width(values: Iterable[float], uncertainties_pct: Iterable[float]) -> float:
    """Absolute 95 % half-width of a sum of independent terms: √(Σ (U_i/100 · x_i)²), in the unit of the x_i."""
    return math.sqrt(sum((fraction_from_pct(u) * x) ** 2 for x, u in zip(values, uncertainties_pct, strict=True)))


def stock_t_c_by_pool(terms: Iterable[StockTerm]) -> dict[str, float]:
    """Totals per pool, t C, with all four InVEST pools present (0.0 where no term)."""
    out = dict.fromkeys(POOLS, 0.0)
    for term in terms:
        out[term.pool] += term.stock_t_c
    return out


def stock_t_c_by_class(terms: Iterable[StockTerm]) -> dict[int, float]:
    out: dict[int, float] = {}
    for term in terms:
        out[term.lucode] = out.get(term.lucode, 0.0) + term.stock_t_c
    return dict(sorted(out.items()))
