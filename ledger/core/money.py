"""How the ledger writes decimals: fixed quanta per kind of figure, as strings, rounded half-even. Pure.

Entry payloads, the registry's projection, the replay and the offline verifier all write stocks, areas, prices,
money and percentages through this module, so that a figure has one spelling wherever it is compared.
"""

from decimal import ROUND_HALF_EVEN, Decimal

STOCK_QUANTUM = Decimal("0.000001")  # t C, t CO2e, and ha for areas: six places
MONEY_QUANTUM = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")
PCT_QUANTUM = Decimal("0.01")


def decimal_text(value: float | Decimal | str, quantum: Decimal) -> str:
    """`value` as a fixed-point string with `quantum`'s places, rounded half-even (floats through their shortest
    repr, so 0.1 is 0.1 and not 0.1000000000000000055...)."""
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)) if isinstance(value, float)
                                                                else value)
    return str(number.quantize(quantum, rounding=ROUND_HALF_EVEN))


def money(amount: Decimal | str, currency: str) -> dict:
    """{"amount": "<decimal string to 0.01>", "currency": "<ISO 4217>"}: money as entries and the API carry it."""
    return {"amount": decimal_text(amount, MONEY_QUANTUM), "currency": currency}
