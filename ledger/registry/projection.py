"""The registry's tables read back in the shape `ledger.core.replay.replay` builds from the ledger.

`verify_ledger` compares the two (`ledger.registry.checks`); bundles and the API show assets and pledges in this
shape, so that what a bank reads is what its offline replay of the entries gives. The other way round,
`registry_tables_rebuild` writes the tables from a replay of the ledger, when a backup is restored.
"""

import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.core.management.color import no_style
from django.db import connection

from geo.models import Parcel
from ledger.core import replay
from ledger.core.canonical_json import canonical_json
from ledger.core.money import PCT_QUANTUM, PRICE_QUANTUM, STOCK_QUANTUM, decimal_text, money
from ledger.log.models import Entry
from ledger.registry.models import Asset, AssetSerialCounter, Party, Pledge, Retirement, Transfer, Valuation


def geometry_sha256(geometry: dict) -> str:
    """sha256 of the RFC 8785 canonical JSON of a GeoJSON geometry: names the parcel's land in the ledger."""
    return hashlib.sha256(canonical_json(geometry)).hexdigest()


def parcel_facts(parcel: Parcel) -> dict:
    """The parcel as an `asset.register` entry records it: id, code, area and geometry hash."""
    return {"id": parcel.id, "code": parcel.code, "area_ha": decimal_text(parcel.area_ha, STOCK_QUANTUM),
            "geometry_sha256": geometry_sha256(parcel.geometry)}


def valuation_projection(valuation: Valuation) -> dict:
    """A valuation row in the shape of its `asset.value` payload (without "asset"). A valuation whose entry
    predates `default_tables_sha256` and `normalised_raster_sha256` (None in the row) shows neither key, as its
    replay does not."""
    later_facts = {name: value for name, value in (
        ("default_tables_sha256", valuation.default_tables_sha256),
        ("normalised_raster_sha256", valuation.normalised_raster_sha256),
    ) if value is not None}
    return {
        "valuation": valuation.id, "run": valuation.run_id, "parcel_result": valuation.parcel_result_id,
        "method_sha256": valuation.method_sha256, "input_raster_sha256": list(valuation.input_raster_sha256),
        **later_facts,
        "code_version": valuation.code_version,
        "stock_tC": decimal_text(valuation.stock_t_c, STOCK_QUANTUM),
        "stock_tCO2e": decimal_text(valuation.stock_co2e_t, STOCK_QUANTUM),
        "stock_ci95_tC": [decimal_text(valuation.stock_ci95_low_t_c, STOCK_QUANTUM),
                          decimal_text(valuation.stock_ci95_high_t_c, STOCK_QUANTUM)],
        f"price_per_{valuation.price_per}": {"amount": decimal_text(valuation.price_amount, PRICE_QUANTUM),
                                             "currency": valuation.currency},
        "value": money(valuation.value_amount, valuation.currency),
        "value_ci95_low": money(valuation.value_ci95_low_amount, valuation.currency),
    }


def pledge_projection(pledge: Pledge) -> dict:
    return {"id": pledge.id, "asset": pledge.asset.code, "pledgee": pledge.pledgee_id,
            "amount": money(pledge.amount, pledge.currency), "term_months": pledge.term_months,
            "ltv_limit_pct": decimal_text(pledge.ltv_limit_pct, PCT_QUANTUM), "status": pledge.status}


def asset_projection(asset: Asset) -> dict:
    retirement = getattr(asset, "retirement", None) if asset.status == Asset.RETIRED else None
    return {
        "code": asset.code, "county": asset.county_code, "year": asset.year, "sequence": asset.sequence,
        "rights_type": asset.rights_type, "holder": asset.holder_id, "parcel": parcel_facts(asset.parcel),
        "evidence": list(asset.evidence), "status": asset.status,
        "valuation": valuation_projection(asset.valuation) if asset.valuation_id else None,
        "retirement": None if retirement is None else {
            "id": retirement.id, "holder": retirement.holder_id, "beneficiary": retirement.beneficiary,
            "reason": retirement.reason},
    }


def registry_projection() -> dict:
    """The registry's tables in the shape `ledger.core.replay.replay` returns: {"parties", "assets", "pledges"}."""
    return {
        "parties": {str(p.id): {"id": p.id, "kind": p.kind, "name": p.name, "uscc": p.uscc}
                    for p in Party.objects.order_by("id")},
        "assets": {a.code: asset_projection(a) for a in Asset.objects.select_related(
            "parcel", "valuation", "retirement").order_by("code")},
        "pledges": {str(p.id): pledge_projection(p) for p in Pledge.objects.select_related("asset").order_by("id")},
    }


def registry_replay() -> dict:
    """Replay every entry of the ledger, in order (raises ledger.core.replay.ReplayError at a rule-breaking entry)."""
    rows = Entry.objects.filter(kind__in=replay.KINDS).order_by("seq").values_list("seq", "kind", "payload")
    return replay.replay(rows.iterator(chunk_size=2000))


# --- the tables from the ledger: restoring a backup -------------------------------------------------------------


class _Tables:
    """The registry's rows as the entries of a replay create and change them, kept in memory until written."""

    def __init__(self, party_users: Mapping[int, object]):
        self.party_users = party_users
        self.parties: list[Party] = []
        self.assets: dict[str, Asset] = {}
        self.valuations: list[tuple[Valuation, str]] = []  # with the code of the asset each values
        self.pledges: dict[int, tuple[Pledge, str]] = {}
        self.transfers: list[tuple[Transfer, str]] = []
        self.retirements: list[tuple[Retirement, str]] = []
        self.created_at: dict[tuple[type, int | str], datetime] = {}

    def party_create(self, payload, timestamp):
        party = Party(id=payload["party"], kind=payload["kind"], name=payload["name"], uscc=payload["uscc"],
                      user=self.party_users.get(payload["party"]))
        self.parties.append(party)
        self.created_at[Party, party.id] = timestamp

    def asset_register(self, payload, timestamp):
        code = payload["asset"]
        self.assets[code] = Asset(code=code, county_code=payload["county"], year=payload["year"],
                                  sequence=payload["sequence"], parcel_id=payload["parcel"]["id"],
                                  rights_type=payload["rights_type"], holder_id=payload["holder"],
                                  evidence=[dict(item) for item in payload["evidence"]], status=Asset.REGISTERED)
        self.created_at[Asset, code] = timestamp

    def asset_confirm(self, payload, timestamp):
        asset = self.assets[payload["asset"]]
        asset.status, asset.confirmed_at = Asset.CONFIRMED, timestamp

    def asset_value(self, payload, timestamp):
        amount, currency, per = replay.price_of(payload)
        low, high = payload["stock_ci95_tC"]
        valuation = Valuation(
            id=payload["valuation"], run_id=payload["run"], parcel_result_id=payload["parcel_result"],
            method_sha256=payload["method_sha256"], default_tables_sha256=payload.get("default_tables_sha256"),
            input_raster_sha256=list(payload["input_raster_sha256"]),
            normalised_raster_sha256=payload.get("normalised_raster_sha256"), code_version=payload["code_version"],
            stock_t_c=Decimal(payload["stock_tC"]), stock_co2e_t=Decimal(payload["stock_tCO2e"]),
            stock_ci95_low_t_c=Decimal(low), stock_ci95_high_t_c=Decimal(high), price_amount=Decimal(amount),
            price_per=per, currency=currency, value_amount=Decimal(payload["value"]["amount"]),
            value_ci95_low_amount=Decimal(payload["value_ci95_low"]["amount"]))
        self.valuations.append((valuation, payload["asset"]))
        self.assets[payload["asset"]].valuation_id = valuation.id
        self.created_at[Valuation, valuation.id] = timestamp

    def pledge_create(self, payload, timestamp):
        pledge = Pledge(id=payload["pledge"], pledgee_id=payload["pledgee"],
                        amount=Decimal(payload["amount"]["amount"]), currency=payload["amount"]["currency"],
                        term_months=payload["term_months"], ltv_limit_pct=Decimal(payload["ltv_limit_pct"]),
                        status=Pledge.ACTIVE)
        self.pledges[pledge.id] = (pledge, payload["asset"])
        self.created_at[Pledge, pledge.id] = timestamp

    def _pledge_close(self, payload, timestamp, status):
        pledge, _code = self.pledges[payload["pledge"]]
        pledge.status, pledge.closed_at = status, timestamp

    def pledge_release(self, payload, timestamp):
        self._pledge_close(payload, timestamp, Pledge.RELEASED)

    def pledge_enforce(self, payload, timestamp):
        self._pledge_close(payload, timestamp, Pledge.ENFORCED)
        self.assets[payload["asset"]].holder_id = payload["to_holder"]

    def asset_transfer(self, payload, timestamp):
        transfer = Transfer(id=payload["transfer"], from_holder_id=payload["from_holder"],
                            to_holder_id=payload["to_holder"], trade_ref=payload["trade_ref"])
        self.transfers.append((transfer, payload["asset"]))
        self.assets[payload["asset"]].holder_id = payload["to_holder"]
        self.created_at[Transfer, transfer.id] = timestamp

    def asset_retire(self, payload, timestamp):
        retirement = Retirement(id=payload["retirement"], holder_id=payload["holder"],
                                beneficiary=payload["beneficiary"], reason=payload["reason"])
        self.retirements.append((retirement, payload["asset"]))
        self.assets[payload["asset"]].status = Asset.RETIRED
        self.created_at[Retirement, retirement.id] = timestamp

    def write(self) -> dict[str, int]:
        """Insert every row (assets first without their valuation, which points back at them), then give each
        row its entry's time; return the number of rows per table."""
        Party.objects.bulk_create(self.parties)
        assets = list(self.assets.values())
        latest = {asset.code: asset.valuation_id for asset in assets}
        for number, asset in enumerate(assets, start=1):  # no entry names an asset's id; the tables start at 1
            asset.id, asset.valuation_id = number, None
        Asset.objects.bulk_create(assets)
        ids = {asset.code: asset.pk for asset in assets}
        dependants = {Valuation: self.valuations, Pledge: list(self.pledges.values()), Transfer: self.transfers,
                      Retirement: self.retirements}
        for model, rows in dependants.items():
            for row, code in rows:
                row.asset_id = ids[code]
            model.objects.bulk_create([row for row, _code in rows])
        for asset in assets:
            asset.valuation_id = latest[asset.code]
        Asset.objects.bulk_update(assets, ["valuation"], batch_size=500)
        counters = {}
        for asset in assets:
            key = (asset.county_code, asset.year)
            counters[key] = max(counters.get(key, 0), asset.sequence)
        AssetSerialCounter.objects.bulk_create([AssetSerialCounter(county_code=county, year=year, last_sequence=last)
                                                for (county, year), last in sorted(counters.items())])
        for model, rows in ((Party, self.parties), (Asset, assets), *(
                (model, [row for row, _code in rows]) for model, rows in dependants.items())):
            for row in rows:  # bulk_create set auto_now_add fields to now
                row.created_at = self.created_at[model, row.code if model is Asset else row.id]
            model.objects.bulk_update(rows, ["created_at"], batch_size=500)
        with connection.cursor() as cursor:  # the next row of each table gets an id above the restored ones
            for statement in connection.ops.sequence_reset_sql(no_style(), REGISTRY_TABLES):
                cursor.execute(statement)
        return {model._meta.db_table: model.objects.count() for model in REGISTRY_TABLES}


REGISTRY_TABLES = (Party, Asset, Valuation, Pledge, Transfer, Retirement, AssetSerialCounter)
_KIND_METHODS = {kind: kind.replace(".", "_") for kind in replay.KINDS}


def registry_tables_rebuild(*, party_users: Mapping[int, object] | None = None) -> dict[str, int]:
    """Write the registry's tables from a replay of the stored ledger, into empty tables; return the rows per
    table. The inverse of `registry_projection`, for restoring a backup (`manage.py import_ledger`) inside the
    caller's transaction.

    Each entry of `replay.KINDS`, in log order, is first checked by `replay.apply_entry` (ReplayError names the
    first that breaks a registry rule), then becomes the rows its service wrote: a party, an asset, each
    valuation (the asset points at the latest), a pledge and its closing, a transfer, a retirement, and the
    county-year serial counters. Ids are the ones the entries name; assets, which entries name by code, are
    numbered 1, 2, 3 ... in registration order. Created, confirmed and closed times are their entries'
    timestamps (the services read their clock a moment before appending). No entry records which users acted,
    so registered_by and created_by stay empty; `party_users` ({party id: user}) gives the user who acts for a
    party. The parcels, accounting runs and results that assets and valuations point to must be in the
    database.
    """
    state, tables = replay.empty_state(), _Tables(party_users or {})
    rows = (Entry.objects.filter(kind__in=replay.KINDS).order_by("seq")
            .values_list("seq", "kind", "payload", "timestamp"))
    for seq, kind, payload, timestamp in rows.iterator(chunk_size=2000):
        replay.apply_entry(state, kind, payload, seq=seq)
        getattr(tables, _KIND_METHODS[kind])(payload, timestamp)
    return tables.write()
