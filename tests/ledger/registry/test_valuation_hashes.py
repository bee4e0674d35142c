"""An `asset.value` entry carries the run's default-tables hash and the hashes of the raster copies the run read.
The tables, the replay, the API and a bank's offline check of a bundle agree: for new valuations, and for old
ones whose entries lack both keys."""

import hashlib
import io
import json
from decimal import Decimal

import pytest
import rfc8785
from django.core.management import call_command
from django.db import transaction

from accounting.models import AccountingRun, MethodVersion
from ledger.bundles.services import bundle_build, bundle_bytes
from ledger.core import replay
from ledger.log.keys import signing_key_load
from ledger.log.services import checkpoint_sign_latest, entry_append
from ledger.models import Asset, Entry, Valuation
from ledger.registry import projection
from ledger.registry import services as registry
from ledger.verifier.checks import verify_bundle
from tests.ledger.registry.conftest import box, evidence, make_parcel, make_run

pytestmark = pytest.mark.django_db

TABLES_SHA256 = "ef" * 32
READ_SHA256 = ["12" * 32]  # the normalised copy of the run's one raster
NEW_KEYS = {"default_tables_sha256", "normalised_raster_sha256"}


def verify_ledger() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", "--jobs", "1", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def verified_bundle(asset: Asset) -> dict:
    """The asset's bundle as served, after the bank's offline verifier accepted it."""
    checkpoint_sign_latest(force=True)
    bundle = json.loads(bundle_bytes(bundle_build(asset=asset)))
    verdict = verify_bundle(bundle, trusted_keys=[signing_key_load().verifier.vkey])  # raises if invalid
    assert verdict.asset_code == asset.code
    return bundle


@pytest.fixture
def confirmed(roles):
    asset = registry.asset_register(parcel=make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)),
                                    rights_type="forest_land_ownership", holder=roles.holder, evidence=evidence(),
                                    county_code="510727")
    registry.asset_confirm(asset=asset, county_code="510727")
    return asset


def run_with_hashes(parcel) -> AccountingRun:
    """A succeeded run at 1000 t C (95 %: 800-1200) whose method version is addressed by the real sha256 of
    its RFC 8785 form (a bundle carries the method, and the verifier checks that hash)."""
    method = {"kind": "pool_table", "parameters": {"pools": []}}
    digest = hashlib.sha256(rfc8785.dumps(method)).hexdigest()
    version, _ = MethodVersion.objects.get_or_create(parameters_sha256=digest, defaults=method)
    run = make_run({parcel: (1000.0, 800.0, 1200.0)})
    AccountingRun.objects.filter(id=run.id).update(method_version=version, method_sha256=digest,
                                                   default_tables_sha256=TABLES_SHA256,
                                                   normalised_raster_sha256=READ_SHA256)
    run.refresh_from_db()
    return run


def test_the_entry_carries_the_runs_default_tables_and_read_hashes(roles, confirmed):
    valuation = registry.asset_value(asset=confirmed, run=run_with_hashes(confirmed.parcel), county_code="510727",
                                     price_per_t_co2e=Decimal(80), currency="CNY")
    payload = Entry.objects.for_asset(confirmed.code).last().payload
    assert payload["default_tables_sha256"] == TABLES_SHA256
    assert payload["normalised_raster_sha256"] == READ_SHA256
    assert payload["input_raster_sha256"] == ["ab" * 32]
    row = Valuation.objects.get(id=valuation.id)
    assert (row.default_tables_sha256, row.normalised_raster_sha256) == (TABLES_SHA256, READ_SHA256)
    shown = roles.bank.get(f"/api/assets/{confirmed.code}/").json()["valuation"]
    assert (shown["default_tables_sha256"], shown["normalised_raster_sha256"]) == (TABLES_SHA256, READ_SHA256)
    assert projection.registry_replay() == projection.registry_projection()
    assert verify_ledger()[0] == 0
    bundle = verified_bundle(confirmed)
    assert bundle["asset"]["valuation"]["default_tables_sha256"] == TABLES_SHA256
    assert bundle["asset"]["valuation"]["normalised_raster_sha256"] == READ_SHA256


def old_style_valuation(asset: Asset, run: AccountingRun) -> Valuation:
    """A valuation written as `asset_value` wrote it before the two hashes: its entry has neither key (built
    here by hand: 1000 t C x 44/12 = 3666.666667 t CO2e at 80 CNY is 293333.33; 800 t C gives 234666.67)."""
    result = run.results.get()
    payload = {"run": run.id, "parcel_result": result.id, "method_sha256": run.method_sha256,
               "input_raster_sha256": list(run.input_raster_sha256), "code_version": run.code_version,
               "stock_tC": "1000.000000", "stock_tCO2e": "3666.666667", "stock_ci95_tC": ["800.000000", "1200.000000"],
               "price_per_tCO2e": {"amount": "80.0000", "currency": "CNY"},
               "value": {"amount": "293333.33", "currency": "CNY"},
               "value_ci95_low": {"amount": "234666.67", "currency": "CNY"}}
    with transaction.atomic():
        valuation = Valuation.objects.create(
            asset=asset, run=run, parcel_result=result, method_sha256=run.method_sha256,
            input_raster_sha256=list(run.input_raster_sha256), code_version=run.code_version,
            stock_t_c=Decimal("1000"), stock_co2e_t=Decimal("3666.666667"), stock_ci95_low_t_c=Decimal("800"),
            stock_ci95_high_t_c=Decimal("1200"), price_amount=Decimal("80"), price_per=Valuation.PER_T_CO2E,
            currency="CNY", value_amount=Decimal("293333.33"), value_ci95_low_amount=Decimal("234666.67"))
        Asset.objects.filter(id=asset.id).update(valuation=valuation)
        entry_append(kind="asset.value", payload={"asset": asset.code, "valuation": valuation.id, **payload})
    return valuation


def test_an_old_valuation_without_the_hashes_replays_to_its_projection(roles, confirmed):
    valuation = old_style_valuation(confirmed, run_with_hashes(confirmed.parcel))
    assert (valuation.default_tables_sha256, valuation.normalised_raster_sha256) == (None, None)
    entries = [{"seq": e.seq, "kind": e.kind, "payload": e.payload} for e in Entry.objects.for_asset(confirmed.code)]
    replayed = replay.replay(entries)["assets"][confirmed.code]["valuation"]
    shown = projection.asset_projection(Asset.objects.get(id=confirmed.id))["valuation"]
    assert shown == replayed
    assert NEW_KEYS.isdisjoint(shown)
    assert NEW_KEYS.isdisjoint(roles.bank.get(f"/api/assets/{confirmed.code}/").json()["valuation"])
    assert verify_ledger()[0] == 0
    assert NEW_KEYS.isdisjoint(verified_bundle(confirmed)["asset"]["valuation"])

    # A blank hash is not an absent one: a row claiming a key its entry lacks is a difference verify_ledger names.
    Valuation.objects.filter(id=valuation.id).update(default_tables_sha256="")
    code, output = verify_ledger()
    assert code == 1
    assert f"assets.{confirmed.code}.valuation.default_tables_sha256: in the tables but not in the replay" in output
    Valuation.objects.filter(id=valuation.id).update(default_tables_sha256=None)

    # Valued again by today's service: the new entry carries the hashes, and old and new entries replay together.
    registry.asset_value(asset=confirmed, run=run_with_hashes(confirmed.parcel), county_code="510727",
                         price_per_t_co2e=Decimal(80), currency="CNY")
    assert projection.registry_replay() == projection.registry_projection()
    assert verified_bundle(confirmed)["asset"]["valuation"]["default_tables_sha256"] == TABLES_SHA256
