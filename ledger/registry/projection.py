"""The registry's tables read back in the shape `ledger.core.replay.replay` builds from the ledger.

`verify_ledger` compares the two (`ledger.registry.checks`); bundles and the API show assets and pledges in this
shape, so that what a bank reads is what its offline replay of the entries gives.
"""

import hashlib

from geo.models import Parcel
from ledger.core import replay
from ledger.core.canonical_json import canonical_json
from ledger.core.money import PCT_QUANTUM, PRICE_QUANTUM, STOCK_QUANTUM, decimal_text, money
from ledger.log.models import Entry
from ledger.registry.models import Asset, Party, Pledge, Valuation


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


