"""The registry's tables equal a replay of the ledger; verify_ledger names the first difference; the replay
module is pure and checks the registry's rules on its own."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from ledger.core import replay
from ledger.models import Asset, Entry, Party, Pledge
from ledger.registry import projection
from ledger.registry import services as registry
from tests.ledger.registry.conftest import box, evidence, make_parcel, make_run

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _verify() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", "--jobs", "1", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def history(roles):
    """Two assets through every kind of entry."""
    a = registry.asset_register(parcel=make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)),
                                rights_type="forest_land_ownership", holder=roles.holder, evidence=evidence(),
                                county_code="510727")
    b = registry.asset_register(parcel=make_parcel("LQ-2", box(104.60, 32.40, 104.61, 32.41)),
                                rights_type="grassland_contract", holder=roles.buyer, evidence=evidence("a", "b"),
                                county_code="510727")
    for asset in (a, b):
        registry.asset_confirm(asset=asset, county_code="510727")
        registry.asset_value(asset=asset, run=make_run({asset.parcel: (1000.0, 800.0, 1200.0)}),
                             county_code="510727", price_per_t_co2e=80)
    p1 = registry.pledge_create(asset=a, pledgee=roles.bank_party, amount=50000, currency="CNY", term_months=24)
    registry.pledge_release(pledge=p1, released_by=roles.bank_party)
    registry.asset_transfer(asset=a, to_holder=roles.buyer, trade_ref="T-1")
    p2 = registry.pledge_create(asset=a, pledgee=roles.bank2_party, amount=1000, currency="CNY", term_months=6)
    registry.pledge_enforce(pledge=p2, enforced_by=roles.bank2_party, nominee=roles.holder)
    registry.pledge_create(asset=b, pledgee=roles.bank_party, amount=70000, currency="CNY", term_months=12,
                           ltv_limit_pct=40)
    registry.asset_retire(asset=a, beneficiary="Chengdu Metro", reason="offset")
    return a, b


@pytest.mark.django_db
def test_tables_equal_the_replay_and_verify_ledger_passes(history):
    a, _b = history
    replayed = projection.registry_replay()
    assert replayed == projection.registry_projection()
    assert replayed["assets"][a.code]["holder"] == Asset.objects.get(code=a.code).holder_id
    assert replayed["assets"][a.code]["status"] == "retired"
    assert [p["status"] for p in replayed["pledges"].values()] == ["released", "enforced", "active"]
    assert len(replayed["parties"]) == Party.objects.count() == 5
    code, output = _verify()
    assert code == 0, output


@pytest.mark.django_db
def test_a_replay_of_one_assets_entries_gives_its_projection(history):
    a, _ = history
    entries = [{"seq": e.seq, "kind": e.kind, "payload": e.payload} for e in Entry.objects.for_asset(a.code)]
    state = replay.replay(entries)
    assert state["assets"] == {a.code: projection.asset_projection(Asset.objects.get(code=a.code))}
    assert set(state["pledges"]) == {str(p.id) for p in Pledge.objects.filter(asset=a)}


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "want"), [
    (lambda a, b, r: Asset.objects.filter(code=b.code).update(holder=r.holder),
     "assets.{b}.holder: the tables have {holder}, the replay of the ledger gives {buyer}"),
    (lambda a, b, r: Pledge.objects.filter(asset=b).update(status="released"),
     "pledges.{pledge}.status: the tables have 'released', the replay of the ledger gives 'active'"),
    (lambda a, b, r: Pledge.objects.filter(asset=b).update(amount="70000.01"),
     "pledges.{pledge}.amount.amount: the tables have '70000.01', the replay of the ledger gives '70000.00'"),
    (lambda a, b, r: Party.objects.filter(id=r.holder.id).update(name="Someone else"),
     "parties.{holder}.name: the tables have 'Someone else'"),
])
def test_a_changed_projection_row_is_named(history, roles, change, want):
    a, b = history
    change(a, b, roles)
    code, output = _verify()
    assert code == 1
    pledge = Pledge.objects.get(asset=b).id
    assert output.startswith("ledger verification FAILED: registry projection differs from the replay of the "
                             "ledger at " + want.format(b=b.code, holder=roles.holder.id, buyer=roles.buyer.id,
                                                        pledge=pledge)), output


def _entries():
    register = {"asset": "A", "county": "510727", "year": 2026, "sequence": 1, "rights_type": "forest_land_use",
                "holder": 1, "parcel": {"id": 1, "code": "P", "area_ha": "10.000000", "geometry_sha256": "0" * 64},
                "evidence": []}
    value = {"asset": "A", "valuation": 1, "run": 1, "parcel_result": 1, "method_sha256": "m",
             "input_raster_sha256": ["r"], "code_version": "v", "stock_tC": "100.000000",
             "stock_tCO2e": "366.666667", "stock_ci95_tC": ["60.000000", "140.000000"],
             "price_per_tC": {"amount": "10.0000", "currency": "CNY"},
             "value": {"amount": "1000.00", "currency": "CNY"},
             "value_ci95_low": {"amount": "600.00", "currency": "CNY"}}
    return [(0, "asset.register", register), (1, "asset.confirm", {"asset": "A"}), (2, "asset.value", value)]


def _pledge(pledge_id, amount, ltv="50.00"):
    return {"asset": "A", "pledge": pledge_id, "pledgee": 9, "amount": {"amount": amount, "currency": "CNY"},
            "term_months": 12, "ltv_limit_pct": ltv}


def test_replay_enforces_the_ltv_limit():
    ok = [*_entries(), (3, "pledge.create", _pledge(1, "300.00"))]  # 50% of 600.00
    assert replay.replay(ok)["pledges"]["1"]["status"] == "active"
    with pytest.raises(replay.ReplayError, match=r"^entry 4 \(pledge.create\): active pledges would sum to 300.01"):
        replay.replay([*ok, (4, "pledge.create", _pledge(2, "0.01"))])


def test_replay_refuses_a_transfer_while_pledged_and_a_wrong_value():
    pledged = [*_entries(), (3, "pledge.create", _pledge(1, "100.00"))]
    transfer = {"asset": "A", "transfer": 1, "from_holder": 1, "to_holder": 2, "trade_ref": ""}
    with pytest.raises(replay.ReplayError, match="cannot be transferred while pledge 1 is active"):
        replay.replay([*pledged, (4, "asset.transfer", transfer)])
    moved = replay.replay([*pledged, (4, "pledge.release", {"asset": "A", "pledge": 1}),
                           (5, "asset.transfer", transfer)])
    assert moved["assets"]["A"]["holder"] == 2
    entries = _entries()
    entries[2][2]["value_ci95_low"] = {"amount": "600.01", "currency": "CNY"}
    with pytest.raises(replay.ReplayError, match=r"entry 2 \(asset.value\): value_ci95_low is .*want .*600.00"):
        replay.replay(entries)


def test_replay_skips_other_kinds_and_names_malformed_payloads():
    assert replay.replay([("test.note", {"asset": "A"})]) == replay.empty_state()
    with pytest.raises(replay.ReplayError, match=r"entry 0 \(asset.register\): malformed payload: KeyError"):
        replay.replay([{"seq": 0, "kind": "asset.register", "payload": {"asset": "A"}}])


def test_valuation_money_per_t_co2e_and_per_t_c():
    assert replay.valuation_money(stock_t_c="3", price_amount="1", price_per="tCO2e") == "11.00"  # 3 × 44/12
    assert replay.valuation_money(stock_t_c="1", price_amount="1", price_per="tCO2e") == "3.67"  # 3.666…
    assert replay.valuation_money(stock_t_c="2.5", price_amount="0.01", price_per="tC") == "0.02"  # 0.025 half-even


def test_replay_imports_only_the_standard_library():
    code = ("import sys, ledger.core.replay; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('django', 'rest_framework', 'celery', 'shapely', 'rfc8785', 'cryptography')); print(bad); "
            "assert not bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
