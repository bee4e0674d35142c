"""What the rights registry does: parties, assets, ownership confirmation, valuation, pledges, transfers,
retirement, idempotent requests and webhooks.

Every service that changes an asset, a pledge or a party is one transaction: it locks what it reads, checks,
writes the projection rows and appends the ledger entry that records the change (`ledger.services.entry_append`),
so the tables and the ledger commit together or not at all. The entries' payloads are listed in `ledger.replay`,
which rebuilds these tables from them; `registry_projection()` reads the tables in the same shape.

Locks: registrations in one county are serialised (a PostgreSQL transaction-level advisory lock on the county,
then the county-year serial counter row FOR UPDATE), so that of two overlapping registrations exactly one wins.
Pledges, transfers, retirements and confirmations lock the asset row FOR UPDATE first. On SQLite every write
transaction takes the database's write lock at BEGIN (settings: transaction_mode IMMEDIATE), which serialises
them all.
"""

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import urlsplit

import rfc8785
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from shapely.geometry import shape

from accounting.models import AccountingRun, ParcelResult
from geo.area import geodesic_area_ha
from geo.errors import CountyScopeError
from geo.models import Parcel
from ledger import codec, replay
from ledger.models import (
    Asset,
    AssetSerialCounter,
    Entry,
    IdempotencyRecord,
    Party,
    Pledge,
    Retirement,
    Transfer,
    Valuation,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from ledger.registry_errors import (
    AssetPledgedError,
    AssetStateError,
    IdempotencyKeyReusedError,
    ParcelOverlapError,
    PledgeLimitError,
    RegistryForbiddenError,
    RegistryInputError,
    ValuationError,
    WebhookURLError,
)
from ledger.services import entry_append
from ledger.uscc import uscc_validate

WEBHOOK_DELIVER_TASK = "ledger.webhook_deliver"
WEBHOOK_RESEND_TASK = "ledger.webhook_deliveries_resend_stranded"
SIGNATURE_HEADER = "Tanhui-Signature"
# Assets whose land is taken: a retired asset's carbon has been claimed, so its land stays taken too.
OVERLAP_BLOCKING_STATUSES = (Asset.REGISTERED, Asset.CONFIRMED, Asset.RETIRED)
ADVISORY_LOCK_NAMESPACE = 0x7448  # "tH": pg_advisory_xact_lock(namespace, county code as an integer)
STOCK_QUANTUM = Decimal("0.000001")  # t C, and ha for areas: six places
MONEY_QUANTUM = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")
PCT_QUANTUM = Decimal("0.01")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _decimal_text(value: float | Decimal, quantum: Decimal) -> str:
    """A float or Decimal as a fixed-point string with `quantum`'s places (floats through their shortest repr)."""
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return str(number.quantize(quantum, rounding=ROUND_HALF_EVEN))


def geometry_sha256(geometry: dict) -> str:
    """sha256 of the RFC 8785 canonical JSON of a GeoJSON geometry: names the parcel's land in the ledger."""
    return hashlib.sha256(rfc8785.dumps(geometry)).hexdigest()


def _append(kind: str, payload: dict) -> Entry:
    """Append the entry and queue its webhook deliveries, inside the caller's transaction."""
    entry = entry_append(kind=kind, payload=payload)
    webhook_deliveries_create(entry=entry)
    return entry


# --- parties ---------------------------------------------------------------------------------------------------


def party_create(*, kind: str, name: str, uscc: str | None = None, user=None) -> Party:
    """Create a party and record it (`party.create`). Organisations need a valid unified social credit code;
    households and individuals carry none. `user` is the API account acting for a bank or exchange party."""
    if kind not in Party.KINDS:
        raise RegistryInputError(f"party kind must be one of {', '.join(Party.KINDS)}; got {kind!r}")
    name = (name or "").strip()
    if not name:
        raise RegistryInputError("a party needs a name")
    if kind in Party.ORGANISATIONS:
        if not uscc:
            raise RegistryInputError(f"a {kind} is an organisation and needs its unified social credit code (uscc)")
        uscc = uscc_validate(uscc)
    elif uscc:
        raise RegistryInputError(f"a {kind} carries no unified social credit code; leave uscc empty")
    else:
        uscc = None
    with transaction.atomic():
        if uscc and Party.objects.filter(uscc=uscc).exists():
            raise RegistryInputError(f"a party with unified social credit code {uscc} already exists", uscc=uscc)
        if user is not None and Party.objects.filter(user=user).exists():
            raise RegistryInputError(f"user {user.get_username()} already acts for a party")
        party = Party.objects.create(kind=kind, name=name, uscc=uscc, user=user)
        _append("party.create", {"party": party.id, "kind": kind, "name": name, "uscc": uscc})
    return party


def party_of_user(user, *, kind: str) -> Party:
    """The party `user` acts for, which must be of `kind`; RegistryForbiddenError otherwise."""
    party = Party.objects.filter(user=user, kind=kind).first() if user.is_authenticated else None
    if party is None:
        raise RegistryForbiddenError(f"your user acts for no {kind} party; register it first (POST /api/parties/)")
    return party


# --- assets ----------------------------------------------------------------------------------------------------


def _county_scope(county_code: str | None, asset_county: str, doing: str) -> None:
    if county_code != asset_county:
        raise CountyScopeError(f"a bureau of county {county_code or '(none)'} cannot {doing} in county {asset_county}")


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


def _evidence_checked(evidence: list[dict]) -> list[dict]:
    checked = []
    for index, item in enumerate(evidence or []):
        name, digest = str(item.get("name", "")).strip(), str(item.get("sha256", "")).strip().lower()
        if not name:
            raise RegistryInputError(f"evidence {index} has no name")
        if not SHA256_HEX.match(digest):
            raise RegistryInputError(f"evidence {index} ({name}): sha256 must be 64 hex digits, got {digest!r}")
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
        raise RegistryInputError(f"rights_type must be one of {', '.join(Asset.RIGHTS_TYPES)}; got {rights_type!r}")
    if holder.kind in (Party.BANK, Party.EXCHANGE, Party.BUREAU):
        raise RegistryInputError(f"party {holder.id} is a {holder.kind}, not a rights holder")
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
            "rights_type": rights_type, "holder": holder.id, "parcel": _parcel_facts(parcel), "evidence": evidence,
        })
    return asset


def _parcel_facts(parcel: Parcel) -> dict:
    return {"id": parcel.id, "code": parcel.code, "area_ha": _decimal_text(parcel.area_ha, STOCK_QUANTUM),
            "geometry_sha256": geometry_sha256(parcel.geometry)}


def _asset_locked(asset: Asset) -> Asset:
    return Asset.objects.select_for_update().get(pk=asset.pk)


def _active_pledge_of(asset: Asset) -> Pledge | None:
    return asset.pledges.filter(status=Pledge.ACTIVE).order_by("id").first()


def asset_confirm(*, asset: Asset, county_code: str | None) -> Asset:
    """Confirm ownership of a registered asset after review (`asset.confirm`); only its county's bureau may."""
    _county_scope(county_code, asset.county_code, "confirm assets")
    with transaction.atomic():
        asset = _asset_locked(asset)
        if asset.status != Asset.REGISTERED:
            raise AssetStateError(f"asset {asset.code} is {asset.status}; only a registered asset can be confirmed",
                                  asset_code=asset.code, asset_status=asset.status)
        asset.status, asset.confirmed_at = Asset.CONFIRMED, timezone.now()
        asset.save(update_fields=["status", "confirmed_at"])
        _append("asset.confirm", {"asset": asset.code})
    return asset


def asset_value(*, asset: Asset, run: AccountingRun, county_code: str | None, price_per_t_co2e: Decimal | None = None,
                currency: str | None = None, valued_by=None) -> Valuation:
    """Attach run `run`'s result for the asset's parcel as its current valuation (`asset.value`).

    The price is `price_per_t_co2e` in `currency` when given; otherwise the run's own price per t C (a run queued
    with valuation terms). Money values: `ledger.replay.valuation_money` (stock × price, × 44/12 per t CO2e).
    """
    _county_scope(county_code, asset.county_code, "value assets")
    if run.status != AccountingRun.SUCCEEDED:
        raise ValuationError(f"run {run.id} is {run.status}; only a succeeded run can value an asset", run=run.id)
    result = ParcelResult.objects.filter(run=run, parcel_id=asset.parcel_id).first()
    if result is None:
        raise ValuationError(f"run {run.id} has no result for parcel {asset.parcel.code} (asset {asset.code})",
                             run=run.id)
    if price_per_t_co2e is not None:
        price, per, currency = Decimal(price_per_t_co2e), Valuation.PER_T_CO2E, currency or "CNY"
    elif run.price_per_t_c is not None:
        price, per, currency = run.price_per_t_c, Valuation.PER_T_C, run.currency
    else:
        raise ValuationError(f"run {run.id} carries no price; give price_per_tCO2e and currency", run=run.id)
    if price < 0:
        raise ValuationError(f"price must be >= 0, got {price}")
    price_text = _decimal_text(price, PRICE_QUANTUM)
    stock = _decimal_text(result.stock_t_c, STOCK_QUANTUM)
    low = _decimal_text(result.stock_ci95_low_t_c, STOCK_QUANTUM)
    high = _decimal_text(result.stock_ci95_high_t_c, STOCK_QUANTUM)
    payload = {
        "asset": asset.code, "run": run.id, "parcel_result": result.id, "method_sha256": run.method_sha256,
        "input_raster_sha256": list(run.input_raster_sha256), "code_version": run.code_version,
        "stock_tC": stock, "stock_tCO2e": _decimal_text(result.stock_co2e_t, STOCK_QUANTUM),
        "stock_ci95_tC": [low, high],
        f"price_per_{per}": {"amount": price_text, "currency": currency},
        "value": {"amount": replay.valuation_money(stock_t_c=stock, price_amount=price_text, price_per=per),
                  "currency": currency},
        "value_ci95_low": {"amount": replay.valuation_money(stock_t_c=low, price_amount=price_text, price_per=per),
                           "currency": currency},
    }
    with transaction.atomic():
        asset = _asset_locked(asset)
        if asset.status != Asset.CONFIRMED:
            raise AssetStateError(f"asset {asset.code} is {asset.status}; only a confirmed asset can be valued",
                                  asset_code=asset.code, asset_status=asset.status)
        valuation = Valuation.objects.create(
            asset=asset, run=run, parcel_result=result, method_sha256=run.method_sha256,
            input_raster_sha256=list(run.input_raster_sha256), code_version=run.code_version,
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
                  ltv_limit_pct: Decimal | None = None, created_by=None) -> Pledge:
    """Register a pledge of `pledgee` on a confirmed, valued asset (`pledge.create`).

    Refused (PledgeLimitError) when the active pledges plus this one would exceed the strictest loan-to-value
    limit among them (default PLEDGE_LTV_LIMIT_PCT) times the valuation's money value at its lower 95% bound.
    The asset row is locked, so concurrent pledges are checked one after another.
    """
    if pledgee.kind != Party.BANK:
        raise RegistryInputError(f"the pledgee must be a bank; party {pledgee.id} is a {pledgee.kind}")
    amount = Decimal(amount)
    if amount <= 0:
        raise RegistryInputError(f"amount must be > 0, got {amount}")
    ltv = Decimal(ltv_limit_pct if ltv_limit_pct is not None else settings.PLEDGE_LTV_LIMIT_PCT)
    if not Decimal(0) < ltv <= Decimal(100):
        raise RegistryInputError(f"ltv_limit_pct must be in (0, 100], got {ltv}")
    if term_months < 1:
        raise RegistryInputError(f"term_months must be >= 1, got {term_months}")
    amount_text, ltv_text = _decimal_text(amount, MONEY_QUANTUM), _decimal_text(ltv, PCT_QUANTUM)
    with transaction.atomic():
        asset = _asset_locked(asset)
        if asset.status != Asset.CONFIRMED:
            raise AssetStateError(f"asset {asset.code} is {asset.status}; only a confirmed asset can be pledged",
                                  asset_code=asset.code, asset_status=asset.status)
        valuation = asset.valuation
        if valuation is None:
            raise AssetStateError(f"asset {asset.code} has no valuation; value it before pledging",
                                  asset_code=asset.code)
        if currency != valuation.currency:
            raise RegistryInputError(f"pledge currency {currency} differs from the valuation's {valuation.currency}")
        active = list(asset.pledges.filter(status=Pledge.ACTIVE).order_by("id"))
        low = _decimal_text(valuation.value_ci95_low_amount, MONEY_QUANTUM)
        limit = replay.pledge_limit(value_ci95_low=low, ltv_limits_pct=[p.ltv_limit_pct for p in active] + [ltv])
        active_total = sum((p.amount for p in active), Decimal(0))
        if active_total + Decimal(amount_text) > limit:
            limit_text = format(limit.normalize(), "f")  # exact: rounding could hide the excess
            raise PledgeLimitError(
                f"pledging {amount_text} {currency} on asset {asset.code} would bring active pledges to "
                f"{active_total + Decimal(amount_text)} {currency}, above the limit {limit_text} {currency} "
                f"({min([p.ltv_limit_pct for p in active] + [ltv])}% of {low} {currency}, the value at the lower "
                "95% bound)",
                asset_code=asset.code, active_pledges_total=str(active_total), limit=limit_text, currency=currency,
                value_ci95_low=low)
        pledge = Pledge.objects.create(asset=asset, pledgee=pledgee, amount=Decimal(amount_text), currency=currency,
                                       term_months=term_months, ltv_limit_pct=Decimal(ltv_text),
                                       created_by=created_by)
        _append("pledge.create", {"asset": asset.code, "pledge": pledge.id, "pledgee": pledgee.id,
                                  "amount": {"amount": amount_text, "currency": currency},
                                  "term_months": term_months, "ltv_limit_pct": ltv_text})
    return pledge


def _pledge_locked_for(pledge: Pledge, party: Party, doing: str) -> tuple[Pledge, Asset]:
    if pledge.pledgee_id != party.id:
        raise RegistryForbiddenError(f"pledge {pledge.id} is held by another bank; only its pledgee may {doing} it",
                                     pledge_id=pledge.id)
    asset = _asset_locked(pledge.asset)
    pledge = Pledge.objects.select_for_update().get(pk=pledge.pk)
    if pledge.status != Pledge.ACTIVE:
        raise AssetStateError(f"pledge {pledge.id} is {pledge.status}; only an active pledge can be {doing}d",
                              pledge_id=pledge.id, pledge_status=pledge.status)
    return pledge, asset


def pledge_release(*, pledge: Pledge, released_by: Party) -> Pledge:
    """Release an active pledge (`pledge.release`); only its pledgee bank may."""
    with transaction.atomic():
        pledge, asset = _pledge_locked_for(pledge, released_by, "release")
        pledge.status, pledge.closed_at = Pledge.RELEASED, timezone.now()
        pledge.save(update_fields=["status", "closed_at"])
        _append("pledge.release", {"asset": asset.code, "pledge": pledge.id})
    return pledge


def pledge_enforce(*, pledge: Pledge, enforced_by: Party, nominee: Party | None = None) -> Pledge:
    """Enforce an active pledge on default (`pledge.enforce`): the asset passes to the bank or its nominee.
    Only the pledgee bank may. Other active pledges on the asset stay attached to it."""
    to_holder = nominee or enforced_by
    with transaction.atomic():
        pledge, asset = _pledge_locked_for(pledge, enforced_by, "enforce")
        if asset.status != Asset.CONFIRMED:
            raise AssetStateError(f"asset {asset.code} is {asset.status}", asset_code=asset.code)
        pledge.status, pledge.closed_at = Pledge.ENFORCED, timezone.now()
        pledge.save(update_fields=["status", "closed_at"])
        asset.holder = to_holder
        asset.save(update_fields=["holder"])
        _append("pledge.enforce", {"asset": asset.code, "pledge": pledge.id, "to_holder": to_holder.id})
    return pledge


# --- transfers and retirement ----------------------------------------------------------------------------------


def _asset_free_locked(asset: Asset, doing: str) -> Asset:
    asset = _asset_locked(asset)
    if asset.status != Asset.CONFIRMED:
        raise AssetStateError(f"asset {asset.code} is {asset.status}; only a confirmed asset can be {doing}",
                              asset_code=asset.code, asset_status=asset.status)
    pledge = _active_pledge_of(asset)
    if pledge is not None:
        raise AssetPledgedError(f"asset {asset.code} cannot be {doing} while pledge {pledge.id} is active "
                                f"(pledgee party {pledge.pledgee_id}, {pledge.amount} {pledge.currency})",
                                asset_code=asset.code, pledge_id=pledge.id)
    return asset


def asset_transfer(*, asset: Asset, to_holder: Party, trade_ref: str = "", created_by=None) -> Transfer:
    """Settle a trade: the asset passes to `to_holder` (`asset.transfer`). Refused while a pledge is active."""
    with transaction.atomic():
        asset = _asset_free_locked(asset, "transferred")
        if to_holder.id == asset.holder_id:
            raise RegistryInputError(f"party {to_holder.id} already holds asset {asset.code}")
        transfer = Transfer.objects.create(asset=asset, from_holder_id=asset.holder_id, to_holder=to_holder,
                                           trade_ref=trade_ref, created_by=created_by)
        _append("asset.transfer", {"asset": asset.code, "transfer": transfer.id, "from_holder": asset.holder_id,
                                   "to_holder": to_holder.id, "trade_ref": trade_ref})
        asset.holder = to_holder
        asset.save(update_fields=["holder"])
    return transfer


def asset_retire(*, asset: Asset, beneficiary: str, reason: str, created_by=None) -> Retirement:
    """Retire the asset's carbon for an offset claim (`asset.retire`); a retired asset does nothing more."""
    if not beneficiary.strip() or not reason.strip():
        raise RegistryInputError("a retirement needs a beneficiary and a reason")
    with transaction.atomic():
        asset = _asset_free_locked(asset, "retired")
        retirement = Retirement.objects.create(asset=asset, holder_id=asset.holder_id, beneficiary=beneficiary,
                                               reason=reason, created_by=created_by)
        asset.status = Asset.RETIRED
        asset.save(update_fields=["status"])
        _append("asset.retire", {"asset": asset.code, "retirement": retirement.id, "holder": asset.holder_id,
                                 "beneficiary": beneficiary, "reason": reason})
    return retirement


# --- the projection, as the tables hold it ---------------------------------------------------------------------


def _money(amount: Decimal, currency: str) -> dict:
    return {"amount": _decimal_text(amount, MONEY_QUANTUM), "currency": currency}


def valuation_projection(valuation: Valuation) -> dict:
    """A valuation row in the shape of its `asset.value` payload (without "asset")."""
    return {
        "valuation": valuation.id, "run": valuation.run_id, "parcel_result": valuation.parcel_result_id,
        "method_sha256": valuation.method_sha256, "input_raster_sha256": list(valuation.input_raster_sha256),
        "code_version": valuation.code_version,
        "stock_tC": _decimal_text(valuation.stock_t_c, STOCK_QUANTUM),
        "stock_tCO2e": _decimal_text(valuation.stock_co2e_t, STOCK_QUANTUM),
        "stock_ci95_tC": [_decimal_text(valuation.stock_ci95_low_t_c, STOCK_QUANTUM),
                          _decimal_text(valuation.stock_ci95_high_t_c, STOCK_QUANTUM)],
        f"price_per_{valuation.price_per}": {"amount": _decimal_text(valuation.price_amount, PRICE_QUANTUM),
                                             "currency": valuation.currency},
        "value": _money(valuation.value_amount, valuation.currency),
        "value_ci95_low": _money(valuation.value_ci95_low_amount, valuation.currency),
    }


def pledge_projection(pledge: Pledge) -> dict:
    return {"id": pledge.id, "asset": pledge.asset.code, "pledgee": pledge.pledgee_id,
            "amount": _money(pledge.amount, pledge.currency), "term_months": pledge.term_months,
            "ltv_limit_pct": _decimal_text(pledge.ltv_limit_pct, PCT_QUANTUM), "status": pledge.status}


def asset_projection(asset: Asset) -> dict:
    retirement = getattr(asset, "retirement", None) if asset.status == Asset.RETIRED else None
    return {
        "code": asset.code, "county": asset.county_code, "year": asset.year, "sequence": asset.sequence,
        "rights_type": asset.rights_type, "holder": asset.holder_id, "parcel": _parcel_facts(asset.parcel),
        "evidence": list(asset.evidence), "status": asset.status,
        "valuation": valuation_projection(asset.valuation) if asset.valuation_id else None,
        "retirement": None if retirement is None else {
            "id": retirement.id, "holder": retirement.holder_id, "beneficiary": retirement.beneficiary,
            "reason": retirement.reason},
    }


def registry_projection() -> dict:
    """The registry's tables in the shape `ledger.replay.replay` returns: {"parties", "assets", "pledges"}."""
    return {
        "parties": {str(p.id): {"id": p.id, "kind": p.kind, "name": p.name, "uscc": p.uscc}
                    for p in Party.objects.order_by("id")},
        "assets": {a.code: asset_projection(a) for a in Asset.objects.select_related(
            "parcel", "valuation", "retirement").order_by("code")},
        "pledges": {str(p.id): pledge_projection(p) for p in Pledge.objects.select_related("asset").order_by("id")},
    }


def registry_replay() -> dict:
    """Replay every entry of the ledger, in order (raises ledger.replay.ReplayError at a rule-breaking entry)."""
    rows = Entry.objects.filter(kind__in=replay.KINDS).order_by("seq").values_list("seq", "kind", "payload")
    return replay.replay(rows.iterator(chunk_size=2000))


# --- idempotency -----------------------------------------------------------------------------------------------


def request_fingerprint(*, method: str, path: str, body: object) -> str:
    """sha256 over the method, the path and the RFC 8785 canonical JSON of the parsed body."""
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    digest.update(rfc8785.dumps(body if body is not None else {}))
    return digest.hexdigest()


def idempotent_perform(*, user, key: str, request_sha256: str,
                       perform: Callable[[], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """Run `perform` once per (user, key): return (status, body, replayed).

    The same key with the same request returns the first (successful) response again, replayed=True, and runs
    nothing; with another request it raises IdempotencyKeyReusedError. A `perform` that raises records nothing,
    so the key may be used again. Two concurrent first uses: the second waits on the unique index, then replays.
    """
    if not key or len(key) > 255:
        raise RegistryInputError(f"Idempotency-Key must be 1-255 characters, got {len(key or '')}")
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=user, key=key, request_sha256=request_sha256)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(user=user, key=key)
            if record.request_sha256 != request_sha256:
                raise IdempotencyKeyReusedError(
                    f"Idempotency-Key {key!r} was used for another request (method, path or body differ)",
                    idempotency_key=key) from None
            return record.response_status, record.response_body, True
        status, body = perform()
        record.response_status, record.response_body = status, body
        record.save(update_fields=["response_status", "response_body"])
    return status, body, False


# --- webhooks --------------------------------------------------------------------------------------------------


def _webhook_host_allowed(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return host.lower() in {h.lower() for h in settings.WEBHOOK_ALLOWED_HOSTS}


def webhook_url_check(url: str) -> str:
    """`url` when it is http(s) to a loopback address or a host in WEBHOOK_ALLOWED_HOSTS; WebhookURLError else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError(f"webhook URL must be http or https with a host, got {url!r}", url=url)
    if not _webhook_host_allowed(parts.hostname):
        raise WebhookURLError(f"webhook host {parts.hostname} is neither loopback nor in WEBHOOK_ALLOWED_HOSTS",
                              url=url, host=parts.hostname)
    return url


def webhook_subscribe(*, owner, url: str, event_kinds: list[str]) -> WebhookSubscription:
    """Subscribe `url` to ledger events of `event_kinds` (registry kinds, or "*" for all)."""
    webhook_url_check(url)
    unknown = sorted(set(event_kinds) - set(replay.KINDS) - {"*"})
    if not event_kinds or unknown:
        raise RegistryInputError(f"event_kinds must name some of {', '.join(replay.KINDS)} or '*'; unknown: "
                                 f"{', '.join(unknown) or '(none given)'}")
    return WebhookSubscription.objects.create(owner=owner, url=url, event_kinds=sorted(set(event_kinds)),
                                              secret=secrets.token_hex(32))


def webhook_event(entry: Entry) -> dict:
    return {"event": entry.kind, "seq": entry.seq, "entry_hash": bytes(entry.hash).hex(),
            "timestamp": codec.format_timestamp(entry.timestamp), "payload": entry.payload}


def webhook_deliveries_create(*, entry: Entry) -> list[WebhookDelivery]:
    """Queue one delivery of `entry` per matching active subscription, in the caller's transaction; the tasks are
    sent when it commits."""
    if entry.kind not in replay.KINDS:
        return []
    deliveries = [WebhookDelivery(subscription=s, entry_seq=entry.seq, event_kind=entry.kind,
                                  event=webhook_event(entry))
                  for s in WebhookSubscription.objects.filter(active=True).order_by("id")
                  if entry.kind in s.event_kinds or "*" in s.event_kinds]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        ids = list(WebhookDelivery.objects.filter(entry_seq=entry.seq).values_list("id", flat=True))
        transaction.on_commit(lambda: [current_app.send_task(WEBHOOK_DELIVER_TASK, args=[i])
                                       if not current_app.conf.task_always_eager
                                       else current_app.tasks[WEBHOOK_DELIVER_TASK].delay(i) for i in ids])
    return deliveries


def webhook_deliveries_stranded(*, now=None) -> list[int]:
    """Ids of pending deliveries whose next attempt is overdue by more than WEBHOOK_STRANDED_AFTER_S.

    The next attempt is due when the delivery is created (no attempt yet) or when the last attempt's wait
    (retry_in_s) ends. Overdue means its task was lost: a broker that dropped it, a worker that died, or a commit
    whose durability could not be confirmed, after which its webhooks are not sent (docs/ledger.md)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_STRANDED_AFTER_S)
    last_attempts = {a.delivery_id: a for a in WebhookAttempt.objects.filter(
        delivery__status=WebhookDelivery.PENDING).order_by("delivery_id", "number")}
    stranded = []
    for delivery in WebhookDelivery.objects.filter(status=WebhookDelivery.PENDING).order_by("id"):
        last = last_attempts.get(delivery.id)
        due = delivery.created_at if last is None else last.attempted_at + timedelta(seconds=last.retry_in_s or 0)
        if due + grace < now:
            stranded.append(delivery.id)
    return stranded


def webhook_deliveries_resend_stranded() -> list[int]:
    """Send a delivery task again for every stranded delivery; return their ids. Receivers may then see a
    delivery twice (if its task was only late), as they may with any retry: the Tanhui-Delivery header tells."""
    stranded = webhook_deliveries_stranded()
    for delivery_id in stranded:
        if current_app.conf.task_always_eager:
            current_app.tasks[WEBHOOK_DELIVER_TASK].delay(delivery_id)
        else:
            current_app.send_task(WEBHOOK_DELIVER_TASK, args=[delivery_id])
    return stranded


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The Tanhui-Signature header: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_retry_delay_s(attempt: int) -> int:
    """Seconds to wait after failed attempt number `attempt` (1-based): base × 2**(attempt − 1), capped."""
    return min(settings.WEBHOOK_RETRY_BASE_S * 2 ** (attempt - 1), settings.WEBHOOK_RETRY_MAX_S)


def webhook_deliver(*, delivery_id: int) -> tuple[WebhookDelivery, int | None]:
    """Make one attempt to deliver `delivery_id`; log it. Return (delivery, seconds to wait before retrying, or
    None when delivered, given up after WEBHOOK_MAX_ATTEMPTS, or not pending)."""
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    if delivery.status != WebhookDelivery.PENDING:
        return delivery, None
    subscription = delivery.subscription
    event = dict(delivery.event, delivery=delivery.id)
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    moment = int(timezone.now().timestamp())
    status_code, error = None, ""
    try:
        webhook_url_check(subscription.url)
        request = urllib.request.Request(subscription.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Tanhui-Webhook/1",
            "Tanhui-Event": delivery.event_kind, "Tanhui-Delivery": str(delivery.id),
            SIGNATURE_HEADER: webhook_signature(secret=subscription.secret, timestamp=moment, body=body)})
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_S) as response:
            status_code = response.status
    except urllib.error.HTTPError as failure:
        status_code, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError, WebhookURLError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    attempt = delivery.attempts + 1
    delivered = status_code is not None and 200 <= status_code < 300
    retry_in_s = None
    if not delivered and attempt < settings.WEBHOOK_MAX_ATTEMPTS:
        retry_in_s = webhook_retry_delay_s(attempt)
    with transaction.atomic():
        WebhookAttempt.objects.create(delivery=delivery, number=attempt, status_code=status_code, error=error[:2000],
                                      retry_in_s=retry_in_s)
        delivery.attempts, delivery.last_status_code, delivery.last_error = attempt, status_code, error[:2000]
        if delivered:
            delivery.status, delivery.delivered_at = WebhookDelivery.DELIVERED, timezone.now()
        elif retry_in_s is None:
            delivery.status = WebhookDelivery.FAILED
        delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at"])
    return delivery, retry_in_s
