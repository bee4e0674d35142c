"""Replay the registry's ledger entries into the registry's current state. Pure: the standard library only.

The registry's tables (parties, assets, valuations, pledges) are projections of the ledger: this module rebuilds
them from entry kinds and payloads alone, so that `verify_ledger` can compare the tables with a replay and an
offline verifier (a bank holding a pledge bundle) can compute an asset's holder, status, valuation and pledges
from the entries it has checked.

    state = replay([(kind, payload), ...])          # or dicts {"seq", "kind", "payload"} in log order
    state["assets"]["510727-2026-000001"]["holder"]  # party id

Entry kinds and their payloads (every number an integer; decimals, money and areas are strings):

- ``party.create``: {"party": id, "kind", "name", "uscc": str | null}
- ``asset.register``: {"asset": code, "county", "year", "sequence", "rights_type", "holder": party id,
  "parcel": {"id", "code", "area_ha", "geometry_sha256"}, "evidence": [{"name", "sha256"}, ...]}
- ``asset.confirm``: {"asset"}
- ``asset.value``: {"asset", "valuation": id, "run", "parcel_result", "method_sha256", "default_tables_sha256",
  "input_raster_sha256": [...], "normalised_raster_sha256": [...], "code_version", "stock_tC", "stock_tCO2e",
  "stock_ci95_tC": [low, high], "price_per_tCO2e" or "price_per_tC": {"amount", "currency"},
  "value": {"amount", "currency"}, "value_ci95_low": {"amount", "currency"}}.
  The run's hashes, each 64 lowercase hex digits: ``method_sha256`` of the method's parameters,
  ``default_tables_sha256`` of the shipped IPCC default tables the method may read ("" for a run from before it
  was recorded), ``input_raster_sha256`` of each uploaded raster and ``normalised_raster_sha256`` of each
  normalised copy the run read (raster, then alt raster; [] for a run from before it was recorded). Entries
  written before ``default_tables_sha256`` and ``normalised_raster_sha256`` were added lack both keys; they
  replay as they are, and their valuations have neither key.
- ``pledge.create``: {"asset", "pledge": id, "pledgee": party id, "amount": {"amount", "currency"},
  "term_months", "ltv_limit_pct"}
- ``pledge.release``: {"asset", "pledge"}; ``pledge.enforce``: {"asset", "pledge", "to_holder": party id}
- ``asset.transfer``: {"asset", "transfer": id, "from_holder", "to_holder", "trade_ref"}
- ``asset.retire``: {"asset", "retirement": id, "holder", "beneficiary", "reason"}

Entries of other kinds are skipped. The replay also checks the registry's rules as it goes (an asset is confirmed
before it is valued for pledging, pledged or transferred; active pledges never exceed the loan-to-value limit of
the valuation's lower 95% bound; nothing is transferred or retired while pledged; a retired asset does nothing
more; a valuation's money equals its stock times its price) and raises ReplayError naming the entry otherwise.

The projection's dictionaries are keyed by strings (asset codes, and party and pledge ids as decimal strings) so
that it survives a JSON round trip unchanged.
"""

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from ledger.core.money import MONEY_QUANTUM

CO2_PER_C_NUMERATOR, CO2_PER_C_DENOMINATOR = 44, 12  # 1 t C = 44/12 t CO2 (molar masses of CO2 and C)
REGISTERED, CONFIRMED, RETIRED = "registered", "confirmed", "retired"
ACTIVE, RELEASED, ENFORCED = "active", "released", "enforced"
KINDS = ("party.create", "asset.register", "asset.confirm", "asset.value", "pledge.create", "pledge.release",
         "pledge.enforce", "asset.transfer", "asset.retire")


class ReplayError(ValueError):
    """An entry that cannot follow the entries before it. `seq` names it (None when the caller gave no seq)."""

    def __init__(self, seq: int | None, kind: str, message: str):
        where = f"entry {seq} ({kind})" if seq is not None else f"entry {kind}"
        super().__init__(f"{where}: {message}")
        self.seq, self.kind = seq, kind


def valuation_money(*, stock_t_c: str, price_amount: str, price_per: str) -> str:
    """The money value of `stock_t_c` (t C, decimal string) at `price_amount` per `price_per` ("tC" or "tCO2e").

    value = stock_t_c × price (per t C), or stock_t_c × 44/12 × price (per t CO2e); computed exactly to 34
    digits and rounded once, half-even, to 0.01. Returns a decimal string such as "123456.78".
    """
    with localcontext() as ctx:
        ctx.prec = 34
        stock, price = Decimal(stock_t_c), Decimal(price_amount)
        if price_per == "tC":
            value = stock * price
        elif price_per == "tCO2e":
            value = stock * CO2_PER_C_NUMERATOR * price / CO2_PER_C_DENOMINATOR
        else:
            raise ValueError(f"price_per must be 'tC' or 'tCO2e', got {price_per!r}")
        return str(value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN))


def pledge_limit(*, value_ci95_low: str, ltv_limits_pct: Iterable[str]) -> Decimal:
    """The most that all active pledges on one asset may sum to: the strictest (smallest) loan-to-value limit
    among them, in percent, times the valuation's money value at its lower 95% bound. Exact, not rounded."""
    with localcontext() as ctx:
        ctx.prec = 34
        return Decimal(value_ci95_low) * min(Decimal(p) for p in ltv_limits_pct) / 100


def price_of(valuation: Mapping) -> tuple[str, str, str]:
    """(amount, currency, per) of a valuation payload's price, whichever unit it is given in."""
    for per in ("tCO2e", "tC"):
        price = valuation.get(f"price_per_{per}")
        if price is not None:
            return price["amount"], price["currency"], per
    raise ValueError("valuation has neither price_per_tCO2e nor price_per_tC")


def empty_state() -> dict:
    return {"parties": {}, "assets": {}, "pledges": {}}


def _entries(entries: Iterable) -> Iterable[tuple[int | None, str, Mapping]]:
    for entry in entries:
        if isinstance(entry, Mapping):
            yield entry.get("seq"), entry["kind"], entry["payload"]
        elif len(entry) == 3:
            yield entry[0], entry[1], entry[2]
        else:
            yield None, entry[0], entry[1]


def replay(entries: Iterable) -> dict:
    """The projected state {"parties", "assets", "pledges"} after `entries`, in log order.

    Each entry is a mapping with "kind", "payload" and optionally "seq", or a tuple (kind, payload) or
    (seq, kind, payload). Raises ReplayError at the first entry that breaks a rule (see the module docstring).
    """
    state = empty_state()
    for seq, kind, payload in _entries(entries):
        apply_entry(state, kind, payload, seq=seq)
    return state


def apply_entry(state: dict, kind: str, payload: Mapping, *, seq: int | None = None) -> None:
    """Apply one entry to `state` in place (see `replay`). Kinds outside KINDS are ignored."""
    handler = _HANDLERS.get(kind)
    if handler is None:
        return
    try:
        handler(state, payload, _Fail(seq, kind))
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        if isinstance(error, ReplayError):
            raise
        raise ReplayError(seq, kind, f"malformed payload: {type(error).__name__}: {error}") from None


class _Fail:
    def __init__(self, seq, kind):
        self.seq, self.kind = seq, kind

    def __call__(self, message: str) -> ReplayError:
        return ReplayError(self.seq, self.kind, message)


def _asset(state, payload, fail, *, statuses=(REGISTERED, CONFIRMED)) -> dict:
    code = payload["asset"]
    asset = state["assets"].get(code)
    if asset is None:
        raise fail(f"asset {code} was never registered")
    if asset["status"] not in statuses:
        raise fail(f"asset {code} is {asset['status']}, want {' or '.join(statuses)}")
    return asset


def _active_pledges(state, code) -> list[dict]:
    return [p for p in state["pledges"].values() if p["asset"] == code and p["status"] == ACTIVE]


def _not_pledged(state, code, fail, doing) -> None:
    active = _active_pledges(state, code)
    if active:
        raise fail(f"asset {code} cannot be {doing} while pledge {active[0]['id']} is active")


def _party_create(state, payload, fail):
    key = str(payload["party"])
    if key in state["parties"]:
        raise fail(f"party {key} is created twice")
    state["parties"][key] = {"id": payload["party"], "kind": payload["kind"], "name": payload["name"],
                             "uscc": payload["uscc"]}


def _asset_register(state, payload, fail):
    code = payload["asset"]
    if code in state["assets"]:
        raise fail(f"asset {code} is registered twice")
    state["assets"][code] = {
        "code": code, "county": payload["county"], "year": payload["year"], "sequence": payload["sequence"],
        "rights_type": payload["rights_type"], "holder": payload["holder"], "parcel": dict(payload["parcel"]),
        "evidence": [dict(e) for e in payload["evidence"]], "status": REGISTERED, "valuation": None,
        "retirement": None,
    }


def _asset_confirm(state, payload, fail):
    _asset(state, payload, fail, statuses=(REGISTERED,))["status"] = CONFIRMED


def _asset_value(state, payload, fail):
    asset = _asset(state, payload, fail)
    amount, currency, per = price_of(payload)
    low, _high = payload["stock_ci95_tC"]
    for field, stock in (("value", payload["stock_tC"]), ("value_ci95_low", low)):
        want = valuation_money(stock_t_c=stock, price_amount=amount, price_per=per)
        if payload[field] != {"amount": want, "currency": currency}:
            raise fail(f"{field} is {payload[field]}, want {{'amount': '{want}', 'currency': '{currency}'}} "
                       f"({stock} t C at {amount} {currency} per {per})")
    asset["valuation"] = {k: v for k, v in payload.items() if k != "asset"}


def _pledge_create(state, payload, fail):
    code = payload["asset"]
    asset = _asset(state, payload, fail, statuses=(CONFIRMED,))
    key = str(payload["pledge"])
    if key in state["pledges"]:
        raise fail(f"pledge {key} is created twice")
    valuation = asset["valuation"]
    if valuation is None:
        raise fail(f"asset {code} has no valuation to pledge against")
    amount = payload["amount"]
    if amount["currency"] != valuation["value_ci95_low"]["currency"]:
        raise fail(f"pledge in {amount['currency']}, but the valuation is in {valuation['value_ci95_low']['currency']}")
    active = _active_pledges(state, code)
    limit = pledge_limit(value_ci95_low=valuation["value_ci95_low"]["amount"],
                         ltv_limits_pct=[p["ltv_limit_pct"] for p in active] + [payload["ltv_limit_pct"]])
    total = sum((Decimal(p["amount"]["amount"]) for p in active), Decimal(amount["amount"]))
    if total > limit:
        raise fail(f"active pledges would sum to {total} {amount['currency']}, above the limit {limit}")
    state["pledges"][key] = {"id": payload["pledge"], "asset": code, "pledgee": payload["pledgee"],
                             "amount": dict(amount), "term_months": payload["term_months"],
                             "ltv_limit_pct": payload["ltv_limit_pct"], "status": ACTIVE}


def _pledge_close(state, payload, fail, status):
    key = str(payload["pledge"])
    pledge = state["pledges"].get(key)
    if pledge is None:
        raise fail(f"pledge {key} was never created")
    if pledge["asset"] != payload["asset"]:
        raise fail(f"pledge {key} is on asset {pledge['asset']}, not {payload['asset']}")
    if pledge["status"] != ACTIVE:
        raise fail(f"pledge {key} is {pledge['status']}, want active")
    pledge["status"] = status
    return pledge


def _pledge_release(state, payload, fail):
    _pledge_close(state, payload, fail, RELEASED)


def _pledge_enforce(state, payload, fail):
    asset = _asset(state, payload, fail, statuses=(CONFIRMED,))
    _pledge_close(state, payload, fail, ENFORCED)
    asset["holder"] = payload["to_holder"]


def _asset_transfer(state, payload, fail):
    asset = _asset(state, payload, fail, statuses=(CONFIRMED,))
    _not_pledged(state, asset["code"], fail, "transferred")
    if payload["from_holder"] != asset["holder"]:
        raise fail(f"transfer from holder {payload['from_holder']}, but asset {asset['code']} is held by "
                   f"{asset['holder']}")
    asset["holder"] = payload["to_holder"]


def _asset_retire(state, payload, fail):
    asset = _asset(state, payload, fail, statuses=(CONFIRMED,))
    _not_pledged(state, asset["code"], fail, "retired")
    asset["status"] = RETIRED
    asset["retirement"] = {"id": payload["retirement"], "holder": payload["holder"],
                           "beneficiary": payload["beneficiary"], "reason": payload["reason"]}


_HANDLERS = {
    "party.create": _party_create,
    "asset.register": _asset_register,
    "asset.confirm": _asset_confirm,
    "asset.value": _asset_value,
    "pledge.create": _pledge_create,
    "pledge.release": _pledge_release,
    "pledge.enforce": _pledge_enforce,
    "asset.transfer": _asset_transfer,
    "asset.retire": _asset_retire,
}


def first_difference(stated: object, replayed: object, where: str = "", *, stated_in: str = "the tables",
                     stated_says: str = "the tables have", replayed_in: str = "the replay of the ledger") -> str | None:
    """The first place where `stated` (the stored tables, or a bundle's claims) differs from `replayed`, as a
    sentence such as "assets.510727-2026-000001.holder: the tables have 7, the replay of the ledger gives 3";
    None when they are equal. Keys are visited in sorted order, so the answer is reproducible; `where` names the
    root ("asset", "pledges") and the `*_in`/`*_says` words name the two sides."""
    label = where or "projection"
    if isinstance(stated, Mapping) and isinstance(replayed, Mapping):
        for key in sorted(set(stated) | set(replayed), key=str):
            child = f"{where}.{key}" if where else str(key)
            if key not in replayed:
                return f"{child}: in {stated_in} but not in {replayed_in}"
            if key not in stated:
                return f"{child}: missing in {stated_in}; {replayed_in} gives {replayed[key]!r}"
            found = first_difference(stated[key], replayed[key], child, stated_in=stated_in,
                                     stated_says=stated_says, replayed_in=replayed_in)
            if found is not None:
                return found
        return None
    if isinstance(stated, list) and isinstance(replayed, list):
        for index, (left, right) in enumerate(zip(stated, replayed, strict=False)):
            found = first_difference(left, right, f"{label}[{index}]", stated_in=stated_in,
                                     stated_says=stated_says, replayed_in=replayed_in)
            if found is not None:
                return found
        if len(stated) != len(replayed):
            return f"{label}: {len(stated)} items in {stated_in}, {len(replayed)} in {replayed_in}"
        return None
    if stated != replayed or type(stated) is not type(replayed):
        return f"{label}: {stated_says} {stated!r}, {replayed_in} gives {replayed!r}"
    return None
