"""What the rights registry does: parties, assets, ownership confirmation, valuation, pledges, transfers and
retirement.

Every service that changes an asset, a pledge or a party is one transaction: it locks what it reads, checks,
writes the projection rows and appends the ledger entry that records the change (`ledger.log.services.entry_append`),
so the tables and the ledger commit together or not at all. The entries' payloads are listed in `ledger.core.replay`,
which rebuilds these tables from them; `ledger.registry.projection` reads the tables in the same shape. Webhooks
for each entry are queued by the log's append listener (`ledger.webhooks`).

Locks: registrations in one county are serialised (a PostgreSQL transaction-level advisory lock on the county,
then the county-year serial counter row FOR UPDATE), so that of two overlapping registrations exactly one wins.
Pledges, transfers, retirements and confirmations lock the asset row FOR UPDATE first. On SQLite every write
transaction takes the database's write lock at BEGIN (settings: transaction_mode IMMEDIATE), which serialises
them all.

Preconditions: every service that changes an asset takes `if_match`, the entity tags the asset's current one
(`asset_etag`) must be among, and a transfer also `expected_holder`. They are checked under the asset's row lock,
before anything else about the change, so of two changes made against the same state only the first goes
through; the other is refused with PreconditionFailedError (HTTP 412). The pages pass none.
"""

import re
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop
from shapely.geometry import shape

from accounting.models import AccountingRun, ParcelResult
from geo.area import geodesic_area_ha
from geo.errors import CountyScopeError
from geo.models import Parcel
from ledger.core import replay
from ledger.core.money import MONEY_QUANTUM, PCT_QUANTUM, PRICE_QUANTUM, STOCK_QUANTUM, decimal_text
from ledger.log.models import Entry
from ledger.log.services import entry_append
from ledger.registry.errors import (
    AssetPledgedError,
    AssetStateError,
    ParcelOverlapError,
    PledgeLimitError,
    PreconditionFailedError,
    RegistryForbiddenError,
    RegistryInputError,
    ValuationError,
)
from ledger.registry.models import Asset, AssetSerialCounter, Party, Pledge, Retirement, Transfer, Valuation
from ledger.registry.projection import parcel_facts
from ledger.registry.uscc import uscc_validate

# Assets whose land is taken: a retired asset's carbon has been claimed, so its land stays taken too.
OVERLAP_BLOCKING_STATUSES = (Asset.REGISTERED, Asset.CONFIRMED, Asset.RETIRED)
ADVISORY_LOCK_NAMESPACE = 0x7448  # "tH": pg_advisory_xact_lock(namespace, county code as an integer)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _append(kind: str, payload: dict) -> Entry:
    """Append the registry entry inside the caller's transaction."""
    return entry_append(kind=kind, payload=payload)


PLEDGE_TERM_MONTHS_MAX = 600  # 50 years: longer than any sink-pledge loan; the API and the pages ask for the same

# One sentence per action, so that each can be translated whole.
_OUTSIDE_COUNTY = {
    "register assets": gettext_noop("a bureau of county %(bureau_county)s cannot register assets in county %(county)s"),
    "confirm assets": gettext_noop("a bureau of county %(bureau_county)s cannot confirm assets in county %(county)s"),
    "value assets": gettext_noop("a bureau of county %(bureau_county)s cannot value assets in county %(county)s"),
}
_ASSET_NOT_CONFIRMED = {
    "transferred": gettext_noop("asset %(asset_code)s is %(asset_status)s; only a confirmed asset can be transferred"),
    "retired": gettext_noop("asset %(asset_code)s is %(asset_status)s; only a confirmed asset can be retired"),
}
_ASSET_PLEDGED = {
    "transferred": gettext_noop("asset %(asset_code)s cannot be transferred while pledge %(pledge_id)s is active "
                                "(pledgee party %(pledgee)s, %(amount)s %(currency)s)"),
    "retired": gettext_noop("asset %(asset_code)s cannot be retired while pledge %(pledge_id)s is active "
                            "(pledgee party %(pledgee)s, %(amount)s %(currency)s)"),
}
_PLEDGE_NOT_YOURS = {
    "release": gettext_noop("pledge %(pledge_id)s is held by another bank; only its pledgee may release it"),
    "enforce": gettext_noop("pledge %(pledge_id)s is held by another bank; only its pledgee may enforce it"),
}
_PLEDGE_NOT_ACTIVE = {
    "release": gettext_noop("pledge %(pledge_id)s is %(pledge_status)s; only an active pledge can be released"),
    "enforce": gettext_noop("pledge %(pledge_id)s is %(pledge_status)s; only an active pledge can be enforced"),
}


# --- what a request names by id -------------------------------------------------------------------------------


def party_get(*, party_id: int, field: str) -> Party:
    """The party a request names under `field`; RegistryInputError (422) when there is none."""
    party = Party.objects.filter(id=party_id).first()
    if party is None:
        # `name` carries the field into the sentence: `field` itself is the error's pointer, not a message value.
        raise RegistryInputError(gettext_noop("%(name)s: no party %(party_id)s"), field=field, name=field,
                                 party_id=party_id)
    return party


def run_get(*, run_id: int) -> AccountingRun:
    """The accounting run a valuation names; RegistryInputError (422) when there is none."""
    run = AccountingRun.objects.filter(id=run_id).first()
    if run is None:
        raise RegistryInputError(gettext_noop("run: no accounting run %(run_id)s"), field="run", run_id=run_id)
    return run


def parcel_get(*, parcel_id: int) -> Parcel:
    """The parcel a registration names; RegistryInputError (422) when there is none."""
    parcel = Parcel.objects.filter(id=parcel_id).first()
    if parcel is None:
        raise RegistryInputError(gettext_noop("parcel: no parcel %(parcel_id)s"), field="parcel", parcel_id=parcel_id)
    return parcel


# --- parties ---------------------------------------------------------------------------------------------------


def party_create(*, kind: str, name: str, uscc: str | None = None, user=None) -> Party:
    """Create a party and record it (`party.create`). Organisations need a valid unified social credit code;
    households and individuals carry none. `user` is the API account acting for a bank or exchange party."""
    if kind not in Party.KINDS:
        raise RegistryInputError(gettext_noop("party kind must be one of %(kinds)s; got %(kind)r"), field="kind",
                                 kinds=", ".join(Party.KINDS), kind=kind)
    name = (name or "").strip()
    if not name:
        raise RegistryInputError(gettext_noop("a party needs a name"), field="name")
    if kind in Party.ORGANISATIONS:
        if not uscc:
            raise RegistryInputError(gettext_noop("a %(kind)s is an organisation and needs its unified social "
                                                  "credit code (uscc)"), field="uscc", kind=kind)
        uscc = uscc_validate(uscc)
    elif uscc:
        raise RegistryInputError(gettext_noop("a %(kind)s carries no unified social credit code; leave uscc empty"),
                                 field="uscc", kind=kind)
    else:
        uscc = None
    with transaction.atomic():
        if uscc and Party.objects.filter(uscc=uscc).exists():
            raise RegistryInputError(gettext_noop("a party with unified social credit code %(uscc)s already exists"),
                                     field="uscc", uscc=uscc)
        if user is not None and Party.objects.filter(user=user).exists():
            raise RegistryInputError(gettext_noop("user %(username)s already acts for a party"),
                                     username=user.get_username())
        party = Party.objects.create(kind=kind, name=name, uscc=uscc, user=user)
        _append("party.create", {"party": party.id, "kind": kind, "name": name, "uscc": uscc})
    return party


def party_of_user(user, *, kind: str) -> Party:
    """The party `user` acts for, which must be of `kind`; RegistryForbiddenError otherwise."""
    party = Party.objects.filter(user=user, kind=kind).first() if user.is_authenticated else None
    if party is None:
        raise RegistryForbiddenError(gettext_noop("your user acts for no %(kind)s party; register it first "
                                                  "(POST /api/parties/)"), kind=kind)
    return party


# --- assets ----------------------------------------------------------------------------------------------------


def _county_scope(county_code: str | None, asset_county: str, doing: str) -> None:
    if county_code != asset_county:
        raise CountyScopeError(_OUTSIDE_COUNTY[doing], bureau_county=county_code or "(none)", county=asset_county)


def _county_lock(county_code: str) -> None:
    """Serialise registrations in one county until this transaction ends (PostgreSQL; SQLite is serial)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, int(county_code)])


def _serial_counter_locked(county_code: str, year: int) -> AssetSerialCounter:
    AssetSerialCounter.objects.bulk_create([AssetSerialCounter(county_code=county_code, year=year)],
                                           ignore_conflicts=True)
    return AssetSerialCounter.objects.select_for_update().get(county_code=county_code, year=year)


def asset_overlaps(*, parcel: Parcel, tolerance_ha: float) -> list[dict]:
    """Assets (of OVERLAP_BLOCKING_STATUSES) whose parcel overlaps `parcel` by more than `tolerance_ha` geodesic
    hectares: [{"asset_code", "overlap_ha"}] by code. Bounding boxes preselect; shapely intersects."""
    candidates = (Asset.objects.filter(status__in=OVERLAP_BLOCKING_STATUSES, parcel__min_lon__lte=parcel.max_lon,
                                       parcel__max_lon__gte=parcel.min_lon, parcel__min_lat__lte=parcel.max_lat,
                                       parcel__max_lat__gte=parcel.min_lat)
                  .select_related("parcel").order_by("code"))
    land = shape(parcel.geometry)
    found = []
    for asset in candidates:
        common = land.intersection(shape(asset.parcel.geometry))
        if common.is_empty:
            continue
        overlap_ha = geodesic_area_ha(common)
        if overlap_ha > tolerance_ha:
            found.append({"asset_code": asset.code, "overlap_ha": round(overlap_ha, 6)})
    return found


def _rights_holder_check(party: Party, *, field: str) -> None:
    """Only collectives, companies, households and individuals hold rights; banks take pledges, not assets."""
    if party.kind not in Party.HOLDER_KINDS:
        raise RegistryInputError(gettext_noop("party %(party)s is a %(party_kind)s, not a rights holder"), field=field,
                                 party=party.id, party_kind=party.kind)


def _evidence_checked(evidence: list[dict]) -> list[dict]:
    checked = []
    for index, item in enumerate(evidence or []):
        name, digest = str(item.get("name", "")).strip(), str(item.get("sha256", "")).strip().lower()
        if not name:
            raise RegistryInputError(gettext_noop("evidence %(index)s has no name"), field="evidence", index=index)
        if not SHA256_HEX.match(digest):
            raise RegistryInputError(gettext_noop("evidence %(index)s (%(name)s): sha256 must be 64 hex digits, got "
                                                  "%(digest)r"), field="evidence", index=index, name=name,
                                     digest=digest)
        checked.append({"name": name, "sha256": digest})
    return checked


def asset_register(*, parcel: Parcel, rights_type: str, holder: Party, evidence: list[dict], county_code: str | None,
                   registered_by=None) -> Asset:
    """Register `parcel` as an asset of `holder` with a new serial code (`asset.register`).

    `county_code` is the registering bureau's county, which must be the parcel's (CountyScopeError). Refused with
    ParcelOverlapError when the parcel overlaps an asset beyond ASSET_OVERLAP_TOLERANCE_HA.
    """
    _county_scope(county_code, parcel.county_code, "register assets")
    if rights_type not in Asset.RIGHTS_TYPES:
        raise RegistryInputError(gettext_noop("rights_type must be one of %(rights_types)s; got %(rights_type)r"),
                                 field="rights_type", rights_types=", ".join(Asset.RIGHTS_TYPES),
                                 rights_type=rights_type)
    _rights_holder_check(holder, field="holder")
    evidence = _evidence_checked(evidence)
    tolerance_ha = float(settings.ASSET_OVERLAP_TOLERANCE_HA)
    with transaction.atomic():
        _county_lock(parcel.county_code)
        year = timezone.now().year
        counter = _serial_counter_locked(parcel.county_code, year)
        overlaps = asset_overlaps(parcel=parcel, tolerance_ha=tolerance_ha)
        if overlaps:
            raise ParcelOverlapError(overlaps=overlaps, tolerance_ha=tolerance_ha)
        counter.last_sequence += 1
        counter.save(update_fields=["last_sequence"])
        code = f"{parcel.county_code}-{year}-{counter.last_sequence:06d}"
        asset = Asset.objects.create(code=code, county_code=parcel.county_code, year=year,
                                     sequence=counter.last_sequence, parcel=parcel, rights_type=rights_type,
                                     holder=holder, evidence=evidence, registered_by=registered_by)
        _append("asset.register", {
            "asset": code, "county": parcel.county_code, "year": year, "sequence": counter.last_sequence,
            "rights_type": rights_type, "holder": holder.id, "parcel": parcel_facts(parcel), "evidence": evidence,
        })
    return asset


def asset_etag(*, asset_code: str) -> str | None:
    """The asset's entity tag, `"a-<code>-<seq>"`: `seq` is the last ledger entry about the asset, so the tag changes
    with every change to the asset or to one of its pledges, and with nothing else (one indexed read). None when
    there is no such asset (every asset has its registration entry)."""
    seq = Entry.objects.for_asset(asset_code).order_by("-seq").values_list("seq", flat=True).first()
    return None if seq is None else f'"a-{asset_code}-{seq}"'


def _preconditions_check(asset: Asset, *, if_match: Sequence[str] | None, expected_holder: int | None) -> None:
    """Refuse (PreconditionFailedError) unless the asset's ETag is among `if_match` (strong comparison, so a weak tag
    never matches; "*" matches any) and its holder is party `expected_holder`; None checks nothing. Call it with the
    asset row locked: what it checks is then what the change applies to."""
    if if_match is None and expected_holder is None:
        return
    etag = asset_etag(asset_code=asset.code)
    current = {"asset_code": asset.code, "etag": etag, "holder": asset.holder_id}
    if if_match is not None and "*" not in if_match and etag not in if_match:
        raise PreconditionFailedError(
            gettext_noop("asset %(asset_code)s has changed since you read it: its ETag is now %(etag)s, not "
                         "%(if_match)s"), asset_code=asset.code, etag=etag, if_match=", ".join(if_match),
            extensions={**current, "if_match": list(if_match)})
    if expected_holder is not None and expected_holder != asset.holder_id:
        raise PreconditionFailedError(
            gettext_noop("asset %(asset_code)s is held by party %(holder)s, not party %(expected_holder)s"),
            field="expected_holder", asset_code=asset.code, holder=asset.holder_id, expected_holder=expected_holder,
            extensions={**current, "expected_holder": expected_holder})


def _asset_locked(asset: Asset, *, if_match: Sequence[str] | None = None,
                  expected_holder: int | None = None) -> Asset:
    """The asset's row, locked FOR UPDATE until the transaction ends, after its preconditions hold."""
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    _preconditions_check(asset, if_match=if_match, expected_holder=expected_holder)
    return asset


def _active_pledge_of(asset: Asset) -> Pledge | None:
    return asset.pledges.filter(status=Pledge.ACTIVE).order_by("id").first()


def asset_confirm(*, asset: Asset, county_code: str | None, if_match: Sequence[str] | None = None) -> Asset:
    """Confirm ownership of a registered asset after review (`asset.confirm`); only its county's bureau may."""
    _county_scope(county_code, asset.county_code, "confirm assets")
    with transaction.atomic():
        asset = _asset_locked(asset, if_match=if_match)
        if asset.status != Asset.REGISTERED:
            raise AssetStateError(gettext_noop("asset %(asset_code)s is %(asset_status)s; only a registered asset "
                                               "can be confirmed"), asset_code=asset.code, asset_status=asset.status)
        asset.status, asset.confirmed_at = Asset.CONFIRMED, timezone.now()
        asset.save(update_fields=["status", "confirmed_at"])
        _append("asset.confirm", {"asset": asset.code})
    return asset


def asset_value(*, asset: Asset, run: AccountingRun, county_code: str | None, price_per_t_co2e: Decimal | None = None,
                currency: str | None = None, valued_by=None, if_match: Sequence[str] | None = None) -> Valuation:
    """Attach run `run`'s result for the asset's parcel as its current valuation (`asset.value`).

    The price is `price_per_t_co2e` in `currency` when given; otherwise the run's own price per t C (a run queued
    with valuation terms). Money values: `ledger.core.replay.valuation_money` (stock × price, × 44/12 per t CO2e).
    """
    _county_scope(county_code, asset.county_code, "value assets")
    if run.status != AccountingRun.SUCCEEDED:
        raise ValuationError(gettext_noop("run %(run)s is %(run_status)s; only a succeeded run can value an asset"),
                             field="run", run=run.id, run_status=run.status)
    result = ParcelResult.objects.filter(run=run, parcel_id=asset.parcel_id).first()
    if result is None:
        raise ValuationError(gettext_noop("run %(run)s has no result for parcel %(parcel_code)s (asset "
                                          "%(asset_code)s)"),
                             field="run", run=run.id, parcel_code=asset.parcel.code, asset_code=asset.code)
    if price_per_t_co2e is not None:
        price, per, currency = Decimal(price_per_t_co2e), Valuation.PER_T_CO2E, currency or "CNY"
    elif run.price_per_t_c is not None:
        price, per, currency = run.price_per_t_c, Valuation.PER_T_C, run.currency
    else:
        raise ValuationError(gettext_noop("run %(run)s carries no price; give price_per_tCO2e and currency"),
                             field="price_per_tCO2e", run=run.id)
    if price < 0:
        raise ValuationError(gettext_noop("price must be >= 0, got %(price)s"), field="price_per_tCO2e",
                             price=str(price))
    price_text = decimal_text(price, PRICE_QUANTUM)
    stock = decimal_text(result.stock_t_c, STOCK_QUANTUM)
    low = decimal_text(result.stock_ci95_low_t_c, STOCK_QUANTUM)
    high = decimal_text(result.stock_ci95_high_t_c, STOCK_QUANTUM)
    payload = {
        "asset": asset.code, "run": run.id, "parcel_result": result.id, "method_sha256": run.method_sha256,
        "default_tables_sha256": run.default_tables_sha256, "input_raster_sha256": list(run.input_raster_sha256),
        "normalised_raster_sha256": list(run.normalised_raster_sha256), "code_version": run.code_version,
        "stock_tC": stock, "stock_tCO2e": decimal_text(result.stock_co2e_t, STOCK_QUANTUM),
        "stock_ci95_tC": [low, high],
        f"price_per_{per}": {"amount": price_text, "currency": currency},
        "value": {"amount": replay.valuation_money(stock_t_c=stock, price_amount=price_text, price_per=per),
                  "currency": currency},
        "value_ci95_low": {"amount": replay.valuation_money(stock_t_c=low, price_amount=price_text, price_per=per),
                           "currency": currency},
    }
    with transaction.atomic():
        asset = _asset_locked(asset, if_match=if_match)
        if asset.status != Asset.CONFIRMED:
            raise AssetStateError(gettext_noop("asset %(asset_code)s is %(asset_status)s; only a confirmed asset can "
                                               "be valued"), asset_code=asset.code, asset_status=asset.status)
        valuation = Valuation.objects.create(
            asset=asset, run=run, parcel_result=result, method_sha256=run.method_sha256,
            default_tables_sha256=payload["default_tables_sha256"], input_raster_sha256=payload["input_raster_sha256"],
            normalised_raster_sha256=payload["normalised_raster_sha256"], code_version=run.code_version,
            stock_t_c=Decimal(stock), stock_co2e_t=Decimal(payload["stock_tCO2e"]), stock_ci95_low_t_c=Decimal(low),
            stock_ci95_high_t_c=Decimal(high), price_amount=Decimal(price_text), price_per=per, currency=currency,
            value_amount=Decimal(payload["value"]["amount"]),
            value_ci95_low_amount=Decimal(payload["value_ci95_low"]["amount"]), created_by=valued_by)
        asset.valuation = valuation
        asset.save(update_fields=["valuation"])
        _append("asset.value", {"asset": asset.code, "valuation": valuation.id, **{
            k: v for k, v in payload.items() if k != "asset"}})
    return valuation


# --- pledges ---------------------------------------------------------------------------------------------------


def pledge_create(*, asset: Asset, pledgee: Party, amount: Decimal, currency: str, term_months: int,
                  ltv_limit_pct: Decimal | None = None, created_by=None,
                  if_match: Sequence[str] | None = None) -> Pledge:
    """Register a pledge of `pledgee` on a confirmed, valued asset (`pledge.create`).

    Refused (PledgeLimitError) when the active pledges plus this one would exceed the strictest loan-to-value
    limit among them (default PLEDGE_LTV_LIMIT_PCT) times the valuation's money value at its lower 95% bound.
    The asset row is locked, so concurrent pledges are checked one after another.
    """
    if pledgee.kind != Party.BANK:
        raise RegistryInputError(gettext_noop("the pledgee must be a bank; party %(party)s is a %(party_kind)s"),
                                 party=pledgee.id, party_kind=pledgee.kind)
    amount = Decimal(amount)
    if not amount.is_finite() or amount < MONEY_QUANTUM or amount != amount.quantize(MONEY_QUANTUM):
        raise RegistryInputError(gettext_noop("amount must be at least 0.01 with at most two decimals, got "
                                              "%(amount)s"), field="amount", amount=str(amount))
    policy = Decimal(settings.PLEDGE_LTV_LIMIT_PCT)  # the registry's, not the bank's: a bank may ask for less
    ltv = Decimal(ltv_limit_pct) if ltv_limit_pct is not None else policy
    if not Decimal(0) < ltv <= policy:
        raise RegistryInputError(gettext_noop("ltv_limit_pct must be above 0 and at most the registry's limit of "
                                              "%(policy_pct)s, got %(ltv_limit_pct)s"), field="ltv_limit_pct",
                                 policy_pct=str(policy), ltv_limit_pct=str(ltv))
    if not 1 <= term_months <= PLEDGE_TERM_MONTHS_MAX:
        raise RegistryInputError(gettext_noop("term_months must be from 1 to %(max_term_months)s, got "
                                              "%(term_months)s"), field="term_months",
                                 max_term_months=PLEDGE_TERM_MONTHS_MAX, term_months=term_months)
    amount_text, ltv_text = decimal_text(amount, MONEY_QUANTUM), decimal_text(ltv, PCT_QUANTUM)
    with transaction.atomic():
        asset = _asset_locked(asset, if_match=if_match)
        if asset.status != Asset.CONFIRMED:
            raise AssetStateError(gettext_noop("asset %(asset_code)s is %(asset_status)s; only a confirmed asset can "
                                               "be pledged"), asset_code=asset.code, asset_status=asset.status)
        valuation = asset.valuation
        if valuation is None:
            raise AssetStateError(gettext_noop("asset %(asset_code)s has no valuation; value it before pledging"),
                                  asset_code=asset.code)
        if currency != valuation.currency:
            raise RegistryInputError(gettext_noop("pledge currency %(currency)s differs from the valuation's "
                                                  "%(valuation_currency)s"), field="currency", currency=currency,
                                     valuation_currency=valuation.currency)
        active = list(asset.pledges.filter(status=Pledge.ACTIVE).order_by("id"))
        low = decimal_text(valuation.value_ci95_low_amount, MONEY_QUANTUM)
        limit = replay.pledge_limit(value_ci95_low=low, ltv_limits_pct=[p.ltv_limit_pct for p in active] + [ltv])
        active_total = sum((p.amount for p in active), Decimal(0))
        if active_total + Decimal(amount_text) > limit:
            limit_text = format(limit.normalize(), "f")  # exact: rounding could hide the excess
            raise PledgeLimitError(
                gettext_noop("pledging %(amount)s %(currency)s on asset %(asset_code)s would bring active pledges "
                             "to %(new_total)s %(currency)s, above the limit %(limit)s %(currency)s "
                             "(%(ltv_limit_pct)s%% of %(value_ci95_low)s %(currency)s, the value at the lower 95%% "
                             "bound)"),
                field="amount", amount=amount_text, asset_code=asset.code, active_pledges_total=str(active_total),
                new_total=str(active_total + Decimal(amount_text)), limit=limit_text, currency=currency,
                ltv_limit_pct=str(min([p.ltv_limit_pct for p in active] + [ltv])), value_ci95_low=low)
        pledge = Pledge.objects.create(asset=asset, pledgee=pledgee, amount=Decimal(amount_text), currency=currency,
                                       term_months=term_months, ltv_limit_pct=Decimal(ltv_text),
                                       created_by=created_by)
        _append("pledge.create", {"asset": asset.code, "pledge": pledge.id, "pledgee": pledgee.id,
                                  "amount": {"amount": amount_text, "currency": currency},
                                  "term_months": term_months, "ltv_limit_pct": ltv_text})
    return pledge


def _pledge_locked_for(pledge: Pledge, party: Party, doing: str, *,
                       if_match: Sequence[str] | None) -> tuple[Pledge, Asset]:
    if pledge.pledgee_id != party.id:
        raise RegistryForbiddenError(_PLEDGE_NOT_YOURS[doing], pledge_id=pledge.id)
    asset = _asset_locked(pledge.asset, if_match=if_match)
    pledge = Pledge.objects.select_for_update().get(pk=pledge.pk)
    if pledge.status != Pledge.ACTIVE:
        raise AssetStateError(_PLEDGE_NOT_ACTIVE[doing], pledge_id=pledge.id, pledge_status=pledge.status)
    return pledge, asset


def pledge_release(*, pledge: Pledge, released_by: Party, if_match: Sequence[str] | None = None) -> Pledge:
    """Release an active pledge (`pledge.release`); only its pledgee bank may. `if_match` names the pledge's
    asset's ETag."""
    with transaction.atomic():
        pledge, asset = _pledge_locked_for(pledge, released_by, "release", if_match=if_match)
        pledge.status, pledge.closed_at = Pledge.RELEASED, timezone.now()
        pledge.save(update_fields=["status", "closed_at"])
        _append("pledge.release", {"asset": asset.code, "pledge": pledge.id})
    return pledge


def pledge_enforce(*, pledge: Pledge, enforced_by: Party, nominee: Party | None = None,
                   if_match: Sequence[str] | None = None) -> Pledge:
    """Enforce an active pledge on default (`pledge.enforce`): the asset passes to the bank or its nominee.
    Only the pledgee bank may. Other active pledges on the asset stay attached to it. `if_match` names the pledge's
    asset's ETag."""
    to_holder = nominee or enforced_by
    with transaction.atomic():
        pledge, asset = _pledge_locked_for(pledge, enforced_by, "enforce", if_match=if_match)
        if asset.status != Asset.CONFIRMED:
            raise AssetStateError(gettext_noop("asset %(asset_code)s is %(asset_status)s; only a confirmed asset's "
                                               "pledge can be enforced"), asset_code=asset.code,
                                  asset_status=asset.status)
        pledge.status, pledge.closed_at = Pledge.ENFORCED, timezone.now()
        pledge.save(update_fields=["status", "closed_at"])
        asset.holder = to_holder
        asset.save(update_fields=["holder"])
        _append("pledge.enforce", {"asset": asset.code, "pledge": pledge.id, "to_holder": to_holder.id})
    return pledge


# --- transfers and retirement ----------------------------------------------------------------------------------


def _asset_free_locked(asset: Asset, doing: str, *, if_match: Sequence[str] | None,
                       expected_holder: int | None = None) -> Asset:
    asset = _asset_locked(asset, if_match=if_match, expected_holder=expected_holder)
    if asset.status != Asset.CONFIRMED:
        raise AssetStateError(_ASSET_NOT_CONFIRMED[doing], asset_code=asset.code, asset_status=asset.status)
    pledge = _active_pledge_of(asset)
    if pledge is not None:
        raise AssetPledgedError(_ASSET_PLEDGED[doing], asset_code=asset.code, pledge_id=pledge.id,
                                pledgee=pledge.pledgee_id, amount=str(pledge.amount), currency=pledge.currency)
    return asset


def asset_transfer(*, asset: Asset, to_holder: Party, trade_ref: str = "", created_by=None,
                   if_match: Sequence[str] | None = None, expected_holder: int | None = None) -> Transfer:
    """Settle a trade: the asset passes to `to_holder` (`asset.transfer`), who must be a rights holder (a
    collective, company, household or individual, as at registration). Refused while a pledge is active, and
    (PreconditionFailedError) when the asset's holder is not party `expected_holder` or its ETag not in `if_match`:
    of two trades of one asset from the same holder, only the first settles."""
    with transaction.atomic():
        asset = _asset_free_locked(asset, "transferred", if_match=if_match, expected_holder=expected_holder)
        _rights_holder_check(to_holder, field="to_holder")
        if to_holder.id == asset.holder_id:
            raise RegistryInputError(gettext_noop("party %(party)s already holds asset %(asset_code)s"),
                                     field="to_holder", party=to_holder.id, asset_code=asset.code)
        transfer = Transfer.objects.create(asset=asset, from_holder_id=asset.holder_id, to_holder=to_holder,
                                           trade_ref=trade_ref, created_by=created_by)
        _append("asset.transfer", {"asset": asset.code, "transfer": transfer.id, "from_holder": asset.holder_id,
                                   "to_holder": to_holder.id, "trade_ref": trade_ref})
        asset.holder = to_holder
        asset.save(update_fields=["holder"])
    return transfer


def asset_retire(*, asset: Asset, beneficiary: str, reason: str, created_by=None,
                 if_match: Sequence[str] | None = None) -> Retirement:
    """Retire the asset's carbon for an offset claim (`asset.retire`); a retired asset does nothing more."""
    for field, value in (("beneficiary", beneficiary), ("reason", reason)):
        if not value.strip():
            raise RegistryInputError(gettext_noop("a retirement needs a beneficiary and a reason"), field=field)
    with transaction.atomic():
        asset = _asset_free_locked(asset, "retired", if_match=if_match)
        retirement = Retirement.objects.create(asset=asset, holder_id=asset.holder_id, beneficiary=beneficiary,
                                               reason=reason, created_by=created_by)
        asset.status = Asset.RETIRED
        asset.save(update_fields=["status"])
        _append("asset.retire", {"asset": asset.code, "retirement": retirement.id, "holder": asset.holder_id,
                                 "beneficiary": beneficiary, "reason": reason})
    return retirement
