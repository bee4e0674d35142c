"""Money: the value of a stock at a price, and the NPV of a stock change as InVEST defines it.

InVEST Carbon Storage and Sequestration (user guide, "value_seq" equation; InVEST 3.x including 3.20):
    value = V × Δc / n × Σ_{t=0}^{n−1} 1 / ((1 + r/100)^t (1 + c/100)^t)
with V the price per metric ton of *carbon* (not CO2), Δc the change in t C, n = alternate year − baseline year,
r the annual discount rate in percent and c the annual change in the carbon price in percent. With r = c = 0 every
term is 1, the sum is n and value = V × Δc exactly (no division by zero; InVEST PR #492 fixed an n-fold error
there). A price per t CO2e converts as price_per_t_c = price_per_t_co2e × 44/12 (a tonne of C is 44/12 t CO2).

Money is Decimal with its currency, quantised to 0.01 (half-even) at the end of each calculation only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from .errors import ValuationTermsError, gettext_noop
from .units import CO2_PER_C_DECIMAL

MONEY_QUANTUM = Decimal("0.01")


def _decimal(value, name: str) -> Decimal:
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    elif isinstance(value, int):
        out = Decimal(value)
    elif isinstance(value, float):
        out = Decimal(repr(value))  # the shortest decimal that round-trips, not the binary expansion
    elif isinstance(value, str):
        out = Decimal(value)
    else:
        raise TypeError(f"{name} must be a Decimal, int, float or decimal string, got {type(value).__name__}")
    if not out.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)


@dataclass(frozen=True, slots=True)
class ValuationTerms:
    """Price per t C (Decimal) in `currency` (ISO 4217 code), discount rate and annual price change in percent."""

    price_per_t_c: Decimal
    currency: str
    discount_rate_pct: Decimal = Decimal(0)
    price_change_pct: Decimal = Decimal(0)

    def __post_init__(self):
        object.__setattr__(self, "price_per_t_c", _decimal(self.price_per_t_c, "price_per_t_c"))
        object.__setattr__(self, "discount_rate_pct", _decimal(self.discount_rate_pct, "discount_rate_pct"))
        object.__setattr__(self, "price_change_pct", _decimal(self.price_change_pct, "price_change_pct"))
        if not (isinstance(self.currency, str) and len(self.currency) == 3 and self.currency.isalpha()
                and self.currency.isupper()):
            raise ValuationTermsError(gettext_noop("currency must be an ISO 4217 code such as 'CNY' or 'USD', got "
                                                   "%(got)s"), got=repr(self.currency), field="currency",
                                      extensions={})
        if self.price_per_t_c < 0:
            raise ValuationTermsError(gettext_noop("price_per_t_c must be >= 0, got %(got)s"),
                                      got=str(self.price_per_t_c), field="price_per_t_c", extensions={})
        for name in ("discount_rate_pct", "price_change_pct"):
            if getattr(self, name) <= -100:
                raise ValuationTermsError(gettext_noop("%(name)s must be > -100 %%, got %(got)s"), name=name,
                                          got=str(getattr(self, name)), field=name, extensions={})

    @classmethod
    def from_price_per_t_co2e(cls, price_per_t_co2e, currency: str, discount_rate_pct=0, price_change_pct=0):
        """Terms from a CO2e price: 1 t C = 44/12 t CO2e, so price_per_t_c = price_per_t_co2e × 44/12."""
        with localcontext() as ctx:
            ctx.prec = 34
            per_t_c = _decimal(price_per_t_co2e, "price_per_t_co2e") * CO2_PER_C_DECIMAL
        return cls(per_t_c, currency, _decimal(discount_rate_pct, "discount_rate_pct"),
                   _decimal(price_change_pct, "price_change_pct"))


def discount_sum(years: int, discount_rate_pct, price_change_pct) -> Decimal:
    """Σ_{t=0}^{n−1} [(1 + r/100)(1 + c/100)]^−t, 34 significant digits. Equals n when r = c = 0."""
    if years <= 0:
        raise ValueError(f"years between epochs must be > 0, got {years}")
    with localcontext() as ctx:
        ctx.prec = 34
        q = 1 / ((1 + _decimal(discount_rate_pct, "discount_rate_pct") / 100)
                 * (1 + _decimal(price_change_pct, "price_change_pct") / 100))
        total, term = Decimal(0), Decimal(1)
        for _ in range(years):  # n is a few decades: a plain loop keeps the q = 1 case exact, no closed form needed
            total += term
            term *= q
        return total


def valuation_constant_per_t_c(terms: ValuationTerms, years: int) -> Decimal:
    """currency per t C of change: V / n × Σ_{t<n} q^t (unrounded)."""
    if years <= 0:
        raise ValueError(f"years between epochs must be > 0, got {years}")
    with localcontext() as ctx:
        ctx.prec = 34
        return terms.price_per_t_c / years * discount_sum(years, terms.discount_rate_pct, terms.price_change_pct)


def npv_of_change(change_t_c: float, terms: ValuationTerms, years: int) -> Money:
    """InVEST's value of sequestration: valuation constant × Δc (t C), rounded to 0.01."""
    with localcontext() as ctx:
        ctx.prec = 34
        amount = valuation_constant_per_t_c(terms, years) * _decimal(float(change_t_c), "change_t_c")
        return Money(amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN), terms.currency)


def value_of_stock(stock_t_c: float, terms: ValuationTerms) -> Money:
    """A stock at today's price: price_per_t_c × stock_t_c, undiscounted, rounded to 0.01."""
    with localcontext() as ctx:
        ctx.prec = 34
        amount = terms.price_per_t_c * _decimal(float(stock_t_c), "stock_t_c")
        return Money(amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN), terms.currency)
