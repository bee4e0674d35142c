"""Acceptance: a bureau ingests a raster and parcels, runs accounting, registers, confirms and values an asset; a
bank pledges it; an exchange's transfer is refused while pledged; the bank releases; the exchange transfers;
verify_ledger passes and the tables equal the replay. On PostgreSQL with a real Celery worker (`services`), and
its twin on SQLite with tasks in-process. Concurrency on PostgreSQL with real concurrent requests (`postgres`)."""

import io
import threading
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from ledger.core import replay
from ledger.models import Asset, Entry, Pledge
from ledger.registry import projection
from ledger.registry import services as registry
from tests.accounting.test_runs import POOLS, county_raster, parcel_feature
from tests.ledger.registry.conftest import box, evidence, make_parcel, make_run
from tests.ledger.webhooks.test_webhooks import Receiver, verify

CO2_PER_C = Decimal(44) / Decimal(12)


def _poll(fetch, done, *, tries=600, pause_s=0.5):
    """Call `fetch` until `done(result)`, at most `tries` times (bounded, not timed)."""
    for _ in range(tries):
        result = fetch()
        if done(result):
            return result
        time.sleep(pause_s)
    return result


def _flow(api_user, tmp_path):
    _, bureau = api_user("bureau", county="510727", username="bureau-pingwu")
    _, bank = api_user("bank", username="bank-a")
    _, exchange = api_user("exchange", username="exchange")
    _, auditor = api_user("auditor", username="auditor")
    bank_party = bank.post("/api/parties/", {"kind": "bank", "name": "Bank A", "uscc": "914403001922038216"},
                           format="json").json()
    exchange.post("/api/parties/", {"kind": "exchange", "name": "Exchange", "uscc": "91110000802100433B"},
                  format="json")
    holder = bureau.post("/api/parties/", {"kind": "collective", "name": "Guanba village collective",
                                           "uscc": "91350100M000100Y43"}, format="json").json()
    buyer = bureau.post("/api/parties/", {"kind": "company", "name": "Tencent Technology (Shenzhen)",
                                          "uscc": "9144030071526726XG"}, format="json").json()

    with Receiver() as receiver:
        hook = exchange.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["asset.transfer"]},
                             format="json").json()

        # rasters, parcels, method, run (202, then polled until the worker, or the in-process task, finishes)
        with open(county_raster(tmp_path / "r2025.tif"), "rb") as handle:
            raster = bureau.post("/api/rasters/", {"file": handle, "epoch": 2025, "legend": "clcd"},
                                 format="multipart")
        assert raster.status_code == 201, raster.content
        features = [parcel_feature("F-1", 452_005, 3_584_505, 452_495, 3_585_995),
                    parcel_feature("G-1", 453_505, 3_584_505, 453_995, 3_585_995)]
        parcels = bureau.post("/api/parcels/", {"type": "FeatureCollection", "features": features}, format="json")
        assert parcels.status_code == 201, parcels.content
        forest_parcel = next(f for f in parcels.json()["features"] if f["properties"]["code"] == "F-1")
        method = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": POOLS}}, format="json")
        started = bureau.post("/api/runs/", {"method_version": method.json()["id"], "raster": raster.json()["id"],
                                             "county": "510727"}, format="json")
        assert started.status_code == 202, started.content
        run = _poll(lambda: bureau.get(f"/api/runs/{started.json()['id']}/").json(),
                    lambda r: r["status"] in ("succeeded", "failed"))
        assert run["status"] == "succeeded", run
        figures = next(r for r in bureau.get(f"/api/runs/{run['id']}/results/").json()["results"]
                       if r["parcel_code"] == "F-1")["figures"]
        # all forest at 240 t C/ha (zonal class area and parcel area differ in the 9th digit)
        assert figures["stock_tC"] == pytest.approx(figures["area_ha"] * 240.0, rel=1e-6)

        # register, confirm, value
        registered = bureau.post("/api/assets/", {"parcel": forest_parcel["id"], "rights_type":
                                                  "forest_land_ownership", "holder": holder["id"],
                                                  "evidence": evidence("certificate.pdf")},
                                 format="json", HTTP_IDEMPOTENCY_KEY="register-F-1")
        assert registered.status_code == 201, registered.json()
        code = registered.json()["code"]
        assert bureau.post(f"/api/assets/{code}/confirm/").status_code == 200
        valued = bureau.post(f"/api/assets/{code}/valuations/", {"run": run["id"], "price_per_tCO2e": "80",
                                                                "currency": "CNY"}, format="json")
        assert valued.status_code == 201, valued.json()
        low_t_c = Decimal(repr(figures["stock_ci95_tC"][0])).quantize(Decimal("0.000001"))
        value_low = (low_t_c * CO2_PER_C * 80).quantize(Decimal("0.01"))
        assert valued.json()["value_ci95_low"] == {"amount": str(value_low), "currency": "CNY"}

        # pledge 40% of the lower-bound value; the exchange's transfer is refused while pledged
        amount = (value_low * Decimal("0.4")).quantize(Decimal("0.01"))
        pledged = bank.post(f"/api/assets/{code}/pledges/", {"amount": str(amount), "currency": "CNY",
                                                             "term_months": 36}, format="json")
        assert pledged.status_code == 201, pledged.json()
        assert pledged.json()["pledgee"] == bank_party["id"]
        refused = exchange.post(f"/api/assets/{code}/transfers/", {"to_holder": buyer["id"]}, format="json")
        assert refused.status_code == 409 and refused.json()["pledge_id"] == pledged.json()["id"]
        assert bank.post(f"/api/pledges/{pledged.json()['id']}/release/").status_code == 200
        moved = exchange.post(f"/api/assets/{code}/transfers/", {"to_holder": buyer["id"], "trade_ref": "T-2026-1"},
                              format="json")
        assert moved.status_code == 201, moved.json()

        detail = auditor.get(f"/api/assets/{code}/").json()
        assert detail["holder"]["id"] == buyer["id"] and detail["active_pledges"] == []
        assert [h["kind"] for h in detail["history"]] == ["asset.register", "asset.confirm", "asset.value",
                                                          "pledge.create", "pledge.release", "asset.transfer"]
        log = _poll(lambda: exchange.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"],
                    lambda d: bool(d) and d[0]["status"] != "pending")
        assert [(d["event_kind"], d["status"]) for d in log] == [("asset.transfer", "delivered")]
        event = verify(hook["secret"], *receiver.received[0])
        assert event["payload"]["asset"] == code and event["payload"]["to_holder"] == buyer["id"]

    # the ledger verifies, and the tables equal the replay (whole ledger and the asset's own entries)
    out = io.StringIO()
    call_command("verify_ledger", "--jobs", "1", stdout=out)
    assert out.getvalue().startswith("ledger OK")
    assert projection.registry_replay() == projection.registry_projection()
    entries = [{"seq": e["seq"], "kind": e["kind"], "payload": e["payload"]} for e in detail["history"]]
    assert replay.replay(entries)["assets"][code] == projection.asset_projection(Asset.objects.get(code=code))


@pytest.mark.django_db(transaction=True)
def test_end_to_end_in_process(api_user, tmp_path, settings):
    if settings.CELERY_BROKER_URL:
        pytest.skip("the PostgreSQL pass runs the worker version below")
    settings.MEDIA_ROOT = tmp_path / "media"
    _flow(api_user, tmp_path)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_end_to_end_with_a_celery_worker_on_postgresql(api_user, tmp_path):
    _flow(api_user, tmp_path)


# --- concurrency, PostgreSQL ---------------------------------------------------------------------------------


def _concurrently(calls):
    """Run each call in its own thread (own database connection), released together; return their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_overlapping_registrations_exactly_one_wins(roles):
    body = {"rights_type": "forest_land_use", "holder": roles.holder.id, "evidence": evidence()}
    for round_ in range(6):
        lon = 104.50 + round_ * 0.05
        parcels = [make_parcel(f"C-{round_}-a", box(lon, 32.40, lon + 0.01, 32.41)),
                   make_parcel(f"C-{round_}-b", box(lon + 0.005, 32.40, lon + 0.015, 32.41))]
        responses = _concurrently([lambda p=p: roles.bureau.post("/api/assets/", {**body, "parcel": p.id},
                                                                 format="json") for p in parcels])
        assert sorted(r.status_code for r in responses) == [201, 409], [r.json() for r in responses]
        winner = next(r for r in responses if r.status_code == 201).json()["code"]
        loser = next(r for r in responses if r.status_code == 409).json()
        assert loser["overlaps"][0]["asset_code"] == winner
    codes = list(Asset.objects.order_by("sequence").values_list("sequence", flat=True))
    assert codes == list(range(1, 7))  # no gap, no reuse
    assert projection.registry_replay() == projection.registry_projection()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_pledges_never_exceed_the_limit(roles):
    asset = registry.asset_register(parcel=make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)),
                                    rights_type="forest_land_ownership", holder=roles.holder, evidence=evidence(),
                                    county_code="510727")
    registry.asset_confirm(asset=asset, county_code="510727")
    registry.asset_value(asset=asset, run=make_run({asset.parcel: (1000.0, 800.0, 1200.0)}), county_code="510727",
                         price_per_t_co2e=80)
    # value at the lower bound 234666.67 CNY; limit 50% = 117333.335; each asks 20% = 46933.33: two fit, not three
    body = {"amount": "46933.33", "currency": "CNY", "term_months": 12}
    clients = [roles.bank, roles.bank2] * 4
    responses = _concurrently([lambda c=c: c.post(f"/api/assets/{asset.code}/pledges/", body, format="json")
                               for c in clients])
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 6
    assert Pledge.objects.filter(asset=asset, status="active").count() == 2
    assert Entry.objects.filter(kind="pledge.create").count() == 2
    assert projection.registry_replay() == projection.registry_projection()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_idempotency_key_make_one_party(api_user):
    _, bureau = api_user("bureau")
    body = {"kind": "company", "name": "Tencent", "uscc": "9144030071526726XG"}
    responses = _concurrently([lambda: bureau.post("/api/parties/", body, format="json",
                                                   HTTP_IDEMPOTENCY_KEY="same") for _ in range(4)])
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == 3
    assert Entry.objects.filter(kind="party.create").count() == 1
