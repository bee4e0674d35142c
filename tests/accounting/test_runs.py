"""Method versions and accounting runs over the API: queued, executed, reproducible, failing cleanly."""

import json
import time

import numpy as np
import pytest
from rasterio.transform import Affine

from accounting.models import AccountingRun, MethodVersion, ParcelResult
from accounting.services import accounting_run_execute
from geo.models import Parcel
from tests.geo.helpers import write_tif

# Densities (t C/ha) in four pools: above, below, soil, dead.
POOLS = [
    {"lucode": 2, "c_above": 120.0, "c_below": 30.0, "c_soil": 80.0, "c_dead": 10.0},   # forest: 240 t C/ha
    {"lucode": 4, "c_above": 2.5, "c_below": 10.0, "c_soil": 60.0, "c_dead": 0.0},      # grassland: 72.5 t C/ha
]
FOREST_T_C_PER_HA = 240.0
GRASS_T_C_PER_HA = 72.5


def county_raster(path, *, second_epoch=False):
    """A 10 m raster in UTM 48N near Pingwu: the west half forest (2), the east half grassland (4).
    The second epoch turns the top-left 20 x 20 pixels (4 ha of grid) from forest to grassland."""
    classes = np.full((200, 200), 4, np.uint8)
    classes[:, :100] = 2
    if second_epoch:
        classes[:20, :20] = 4
    # Origin chosen near 104.5°E, 32.4°N (UTM 48N easting ~452 km).
    return write_tif(path, classes, crs="EPSG:32648", transform=Affine(10, 0, 452_000, 0, -10, 3_586_000))


def parcel_feature(code, x0, y0, x1, y1):
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
    ring = [to_lonlat.transform(x, y) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]
    return {"type": "Feature", "properties": {"code": code, "county": "510727"},
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}}


@pytest.fixture
def bureau(api_user):
    return api_user("bureau", county="510727")[1]


@pytest.fixture
def setup(bureau, tmp_path, settings):
    """Two rasters, two parcels (one all forest, one all grassland), a pool-table method."""
    settings.MEDIA_ROOT = tmp_path / "media"
    ids = {}
    for name, second in (("r2020", False), ("r2030", True)):
        with open(county_raster(tmp_path / f"{name}.tif", second_epoch=second), "rb") as handle:
            response = bureau.post("/api/rasters/", {"file": handle, "epoch": int(name[1:]), "legend": "clcd"},
                                   format="multipart")
        assert response.status_code == 201, response.content
        ids[name] = response.json()["id"]
    # Parcel edges at 5 m inside the raster's pixel edges: forest block x 452,005-452,495, grass 453,505-453,995.
    parcels = {"type": "FeatureCollection", "features": [
        parcel_feature("F-1", 452_005, 3_584_505, 452_495, 3_585_995),
        parcel_feature("G-1", 453_505, 3_584_505, 453_995, 3_585_995),
    ]}
    assert bureau.post("/api/parcels/", parcels, format="json").status_code == 201
    method = bureau.post("/api/methods/", {"kind": "pool_table", "name": "Pingwu pools 2026",
                                            "parameters": {"pools": POOLS}}, format="json")
    assert method.status_code == 201, method.content
    ids["method"] = method.json()["id"]
    return ids


def start_run(client, capture, **body):
    with capture(execute=True):
        response = client.post("/api/runs/", body, format="json")
    return response


@pytest.mark.django_db
def test_method_versions_are_addressed_by_hash(bureau, api_user):
    first = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": POOLS}}, format="json")
    # The same numbers, keys in another order and 240 spelt 240.0: the same version.
    reordered = [{k: r[k] for k in reversed(list(r))} for r in POOLS]
    again = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": reordered}}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    changed = [dict(POOLS[0], c_soil=81.0), POOLS[1]]
    other = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": changed}}, format="json")
    assert other.status_code == 201
    assert other.json()["parameters_sha256"] != first.json()["parameters_sha256"]
    _, auditor = api_user("auditor")
    assert auditor.get("/api/methods/").json()["count"] == 2
    assert auditor.get(f"/api/methods/{first.json()['id']}/").json()["kind"] == "pool_table"


@pytest.mark.django_db
def test_invalid_method_parameters_are_named(bureau):
    bad = [{"lucode": 2, "c_above": -1, "c_below": 30, "c_soil": "lots", "c_dead": 0}]
    response = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": bad}}, format="json")
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"#/parameters/pools[0]/c_above", "#/parameters/pools[0]/c_soil"}
    assert MethodVersion.objects.count() == 0


@pytest.mark.django_db
def test_published_method_version_never_changes(bureau):
    version_id = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": POOLS}},
                             format="json").json()["id"]
    version = MethodVersion.objects.get(id=version_id)
    version.parameters = {"pools": []}
    from accounting.models import ImmutableError

    with pytest.raises(ImmutableError, match=f"method version {version_id} is published and never changes"):
        version.save()
    with pytest.raises(ImmutableError):
        version.delete()


@pytest.mark.django_db
def test_only_bureau_publishes_methods(api_user):
    _, bank = api_user("bank")
    response = bank.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": POOLS}}, format="json")
    assert response.status_code == 403
    assert MethodVersion.objects.count() == 0


@pytest.mark.django_db
def test_run_computes_each_parcel(bureau, setup, django_capture_on_commit_callbacks):
    response = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                         raster=setup["r2020"], county="510727")
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    assert response["Location"] == f"/api/runs/{run_id}/"
    run = bureau.get(f"/api/runs/{run_id}/").json()
    assert run["status"] == "succeeded", run["failure_reason"]
    assert run["progress"] == {"parcels_done": 2, "parcels_total": 2}
    results = bureau.get(f"/api/runs/{run_id}/results/").json()
    by_code = {r["parcel_code"]: r["figures"] for r in results["results"]}
    forest, grass = by_code["F-1"], by_code["G-1"]
    # Each parcel lies wholly in one class, so its class area is its own geodesic area (within the 1e-4 that
    # straight UTM edges and geodesic edges differ by) and its stock is density x that area.
    for figures, code, density in ((forest, "2", FOREST_T_C_PER_HA), (grass, "4", GRASS_T_C_PER_HA)):
        assert list(figures["class_area_ha"]) == [code]
        assert figures["class_area_ha"][code] == pytest.approx(figures["area_ha"], rel=1e-4)
        assert figures["stock_tC"] == pytest.approx(density * figures["class_area_ha"][code], rel=1e-12)
        assert figures["stock_tCO2e"] == pytest.approx(figures["stock_tC"] * 44 / 12, rel=1e-12)
        assert figures["nodata_ha"] == 0 and figures["outside_ha"] == 0
    # 490 m x 1490 m = 73.01 ha of grid; on the ellipsoid a little more (UTM scale < 1 near 105°E).
    assert 73.01 < forest["area_ha"] < 73.01 * 1.001
    pools = forest["stock_by_pool_tC"]
    assert pools["c_above"] == pytest.approx(120.0 * forest["class_area_ha"]["2"], rel=1e-12)
    assert run["totals"]["stock_tC"] == pytest.approx(forest["stock_tC"] + grass["stock_tC"], rel=1e-12)
    assert run["totals"]["class_area_ha"] == {"2": forest["class_area_ha"]["2"], "4": grass["class_area_ha"]["4"]}


@pytest.mark.django_db
def test_run_records_what_it_read(bureau, setup, django_capture_on_commit_callbacks):
    from geo.models import Raster

    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                       raster=setup["r2020"], county="510727").json()["id"]
    run = AccountingRun.objects.get(id=run_id)
    assert run.input_raster_sha256 == [Raster.objects.get(id=setup["r2020"]).sha256]
    assert run.method_sha256 == MethodVersion.objects.get(id=setup["method"]).parameters_sha256
    assert run.code_version.startswith("0.1.0")
    from accounting.methods import default_tables_sha256

    assert run.default_tables_sha256 == default_tables_sha256()
    assert len(run.default_tables_sha256) == 64


@pytest.mark.django_db
def test_run_records_and_shows_the_hash_of_the_copies_it_read(bureau, setup, api_user, client,
                                                                django_capture_on_commit_callbacks):
    """Beside each upload's sha256, the run records that of the normalised copy the engine read (the bytes
    under MEDIA_ROOT, hashed here with hashlib), in the API and on the run page."""
    import hashlib

    from geo.models import Raster

    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                       raster=setup["r2020"], alt_raster=setup["r2030"], county="510727").json()["id"]
    rasters = [Raster.objects.get(id=setup[name]) for name in ("r2020", "r2030")]
    read = [hashlib.sha256(r.path.read_bytes()).hexdigest() for r in rasters]
    uploaded = [r.sha256 for r in rasters]
    body = bureau.get(f"/api/runs/{run_id}/").json()
    assert body["status"] == "succeeded", body["failure_reason"]
    assert body["normalised_raster_sha256"] == read
    assert body["input_raster_sha256"] == uploaded
    assert set(read).isdisjoint(uploaded)  # normalising (tiling, DEFLATE) rewrote the bytes
    user, _ = api_user("bureau", county="510727")
    client.force_login(user)
    page = client.get(f"/runs/{run_id}/").content.decode()
    assert "Normalised copy sha256 (read)" in page
    assert all(f'<code title="{h}">' in page for h in read)


@pytest.mark.django_db
def test_a_run_fails_when_a_stored_copy_no_longer_has_its_hash(bureau, setup, django_capture_on_commit_callbacks):
    """The 2020 copy replaced by the 2030 copy's bytes: the run fails, naming both hashes, and keeps nothing."""
    import shutil

    from geo.models import Raster

    r2020, r2030 = Raster.objects.get(id=setup["r2020"]), Raster.objects.get(id=setup["r2030"])
    shutil.copyfile(r2030.path, r2020.path)
    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                       raster=setup["r2020"], county="510727").json()["id"]
    run = bureau.get(f"/api/runs/{run_id}/").json()
    assert run["status"] == "failed"
    assert run["failure_reason"] == (
        f"RasterFileChangedError: raster file {r2020.sha256}.tif has sha256 {r2030.normalised_sha256}, want "
        f"{r2020.normalised_sha256} (recorded when it was stored): the file has changed since, so nothing was "
        "read from it")
    assert run["normalised_raster_sha256"] == [r2020.normalised_sha256]
    assert ParcelResult.objects.filter(run_id=run_id).count() == 0


@pytest.mark.django_db
def test_a_raster_without_a_hash_of_its_copy_is_not_run(bureau, setup):
    from geo.models import Raster

    Raster.objects.filter(id=setup["r2020"]).update(normalised_sha256="")
    response = bureau.post("/api/runs/", {"method_version": setup["method"], "raster": setup["r2020"],
                                          "county": "510727"}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == (
        f"raster {setup['r2020']} has no recorded sha256 of its normalised copy (the copy was missing when the "
        "hashes were recorded), so a run could not check what it reads")
    assert AccountingRun.objects.count() == 0


@pytest.mark.django_db
def test_same_inputs_give_identical_numbers(bureau, setup, django_capture_on_commit_callbacks):
    body = {"method_version": setup["method"], "raster": setup["r2020"], "alt_raster": setup["r2030"],
            "county": "510727", "price_per_tC": "43", "currency": "CNY", "discount_rate_pct": "7",
            "uncertainty": "approach2", "seed": 7}
    first = start_run(bureau, django_capture_on_commit_callbacks, **body).json()["id"]
    second = start_run(bureau, django_capture_on_commit_callbacks, **body).json()["id"]
    figures = [list(ParcelResult.objects.filter(run_id=r).order_by("parcel_id").values_list("figures", flat=True))
               for r in (first, second)]
    assert figures[0] == figures[1]
    assert AccountingRun.objects.get(id=first).totals == AccountingRun.objects.get(id=second).totals


@pytest.mark.django_db
def test_a_parcels_interval_is_the_same_alone_and_in_its_county_run(bureau, setup, tmp_path,
                                                                      django_capture_on_commit_callbacks):
    """Monte Carlo draws are seeded by the run's seed and the parcel's county and code, not by its place in the
    run: G-1 alone (first) and G-1 in the county run (second, after F-1) get one interval, and the analyst's
    command over the same parcel file and stored raster gets it too."""
    uncertain = {"pools": POOLS, "uncertainty_pct": {"c_above": 20, "c_soil": 30}}
    method = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": uncertain}, format="json").json()["id"]
    body = {"method_version": method, "raster": setup["r2020"], "uncertainty": "approach2", "seed": 7}
    grass = Parcel.objects.get(code="G-1")
    alone = start_run(bureau, django_capture_on_commit_callbacks, parcels=[grass.id], **body).json()["id"]
    county = start_run(bureau, django_capture_on_commit_callbacks, county="510727", **body).json()["id"]
    assert list(ParcelResult.objects.filter(run_id=county).values_list("parcel__code", flat=True)) == ["F-1", "G-1"]
    interval = ParcelResult.objects.get(run_id=alone).figures["stock_ci95_tC"]
    assert ParcelResult.objects.get(run_id=county, parcel=grass).figures["stock_ci95_tC"] == interval
    low, high = interval
    stock = ParcelResult.objects.get(run_id=alone).stock_t_c
    assert low < stock < high and high - low > 0.1 * stock  # a real spread: ±20 % and ±30 % on two pools

    from django.core.management import call_command

    from geo.models import Raster

    method_file, parcels_file, out = tmp_path / "method.json", tmp_path / "parcels.geojson", tmp_path / "out.json"
    method_file.write_text(json.dumps({"kind": "pool_table", "parameters": uncertain}))
    parcels_file.write_text(json.dumps({"type": "FeatureCollection", "features": [
        parcel_feature("G-1", 453_505, 3_584_505, 453_995, 3_585_995)]}))
    call_command("carbon_stock", "--raster", str(Raster.objects.get(id=setup["r2020"]).path), "--method",
                 str(method_file), "--parcels", str(parcels_file), "--uncertainty", "approach2", "--seed", "7",
                 "--output", str(out))
    assert json.loads(out.read_text())["parcels"][0]["stock_ci95_tC"] == interval


@pytest.mark.django_db
def test_two_epochs_change_and_npv(bureau, setup, django_capture_on_commit_callbacks):
    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                       raster=setup["r2020"], alt_raster=setup["r2030"], parcels=[
                           Parcel.objects.get(code="F-1").id], price_per_tC="43", currency="CNY",
                       discount_rate_pct="7").json()["id"]
    run = bureau.get(f"/api/runs/{run_id}/").json()
    assert run["status"] == "succeeded", run["failure_reason"]
    figures = ParcelResult.objects.get(run_id=run_id).figures
    # The top-left 20 x 20 pixels turned from forest to grassland; the parcel covers 19.5 x 19.5 of them
    # (its edges are 5 m inside the pixel grid), so the lost forest is 195 m x 195 m = 3.8025 ha of grid.
    lost_forest_ha = figures["class_area_ha"]["2"] - figures["alt_class_area_ha"]["2"]
    assert lost_forest_ha == pytest.approx(3.8025, rel=1e-3)  # ellipsoidal vs grid hectares: under 0.1 %
    change = figures["alt_stock_tC"] - figures["stock_tC"]
    assert figures["change_tC"] == pytest.approx(change, rel=1e-12)
    assert change == pytest.approx(-lost_forest_ha * (FOREST_T_C_PER_HA - GRASS_T_C_PER_HA), rel=1e-9)
    assert figures["years"] == 10
    assert figures["annual_change_tCO2e_per_yr"] == pytest.approx(change / 10 * 44 / 12, rel=1e-12)
    factor = sum(1 / 1.07**t for t in range(10))
    assert float(figures["npv"]["amount"]) == pytest.approx(43 * change / 10 * factor, abs=0.01)


@pytest.mark.django_db
def test_a_run_over_a_parcel_beside_the_raster_succeeds_with_all_of_it_outside(bureau, setup,
                                                                               django_capture_on_commit_callbacks):
    """No parcel reaches a pixel, so the zonal job has no strip to read (progress 0 of 0): the run still
    succeeds, with the parcel's whole area outside the raster and no stock."""
    # 500 m x 500 m east of the raster, whose east edge is at 454,000 m.
    outside = {"type": "FeatureCollection", "features": [parcel_feature("X-1", 454_500, 3_585_000, 455_000,
                                                                       3_585_500)]}
    assert bureau.post("/api/parcels/", outside, format="json").status_code == 201
    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                       raster=setup["r2020"], parcels=[Parcel.objects.get(code="X-1").id]).json()["id"]
    run = bureau.get(f"/api/runs/{run_id}/").json()
    assert run["status"] == "succeeded", run["failure_reason"]
    assert run["progress"] == {"parcels_done": 1, "parcels_total": 1}
    figures = ParcelResult.objects.get(run_id=run_id).figures
    assert figures["stock_tC"] == 0 and figures["class_area_ha"] == {}
    assert 25.0 < figures["area_ha"] < 25.0 * 1.001  # 500 m x 500 m of UTM grid, a little more on the ellipsoid
    # The outside part is the parcel itself, densified along the raster's straight sides: equal to ~1e-10.
    assert figures["outside_ha"] == pytest.approx(figures["area_ha"], rel=1e-9)


@pytest.mark.django_db
def test_failed_run_keeps_no_results(bureau, setup, django_capture_on_commit_callbacks):
    forest_only = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": POOLS[:1]}},
                              format="json").json()["id"]
    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=forest_only,
                       raster=setup["r2020"], county="510727").json()["id"]
    run = bureau.get(f"/api/runs/{run_id}/").json()
    assert run["status"] == "failed"
    assert "land-cover classes [4] have area in the parcel but are missing" in run["failure_reason"]
    assert ParcelResult.objects.filter(run_id=run_id).count() == 0
    assert run["totals"] is None


@pytest.mark.django_db
def test_executing_twice_writes_results_once(bureau, setup, django_capture_on_commit_callbacks):
    run_id = start_run(bureau, django_capture_on_commit_callbacks, method_version=setup["method"],
                       raster=setup["r2020"], county="510727").json()["id"]
    before = list(ParcelResult.objects.filter(run_id=run_id).values_list("id", "figures"))
    # A redelivered task (the worker died after writing): nothing changes.
    assert accounting_run_execute(run_id=run_id).status == "succeeded"
    assert list(ParcelResult.objects.filter(run_id=run_id).values_list("id", "figures")) == before
    # A run whose worker died mid-way (status still running, no results): a second delivery leaves it to its
    # holder; the stale-run sweep's take-over of that silent execution computes it from the start.
    AccountingRun.objects.filter(id=run_id).update(status="running")
    ParcelResult.objects.filter(run_id=run_id).delete()
    assert accounting_run_execute(run_id=run_id).status == "running"
    run = AccountingRun.objects.get(id=run_id)
    taken = accounting_run_execute(run_id=run_id, take_over=run.attempt, seen_heartbeat=run.heartbeat_at.isoformat())
    assert (taken.status, taken.attempt) == ("succeeded", 2)
    after = list(ParcelResult.objects.filter(run_id=run_id).values_list("figures", flat=True))
    assert after == [figures for _, figures in before]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"parcels": [1], "county": "510727"}, 400, "give either parcels (ids) or county, not both or neither"),
        ({"parcels": [999999]}, 400, "parcels: no parcels with ids [999999]"),
        ({"county": "510726"}, 422, "the run has no parcels: name parcel ids or a county with parcels"),
        ({"county": "510727", "price_per_tC": "43"}, 422,
         "valuation of a change needs an alternate raster (alt_raster) and years"),
    ],
)
def test_bad_run_requests(bureau, setup, body, status, detail):
    response = bureau.post("/api/runs/", {"method_version": setup["method"], "raster": setup["r2020"], **body},
                           format="json")
    assert response.status_code == status, response.content
    assert response.json()["detail"] == detail
    assert AccountingRun.objects.count() == 0


@pytest.mark.django_db
def test_bureau_cannot_run_another_county(bureau, setup, api_user):
    _, other = api_user("bureau", county="510726")
    response = other.post("/api/runs/", {"method_version": setup["method"], "raster": setup["r2020"],
                                         "county": "510727"}, format="json")
    assert response.status_code == 403
    assert AccountingRun.objects.count() == 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_run_on_a_real_worker_matches_the_command(api_user, tmp_path):
    """PostgreSQL, Redis and a separate Celery worker: the API's numbers equal the analyst command's."""
    from django.core.management import call_command

    _, bureau = api_user("bureau", county="510727")
    raster_path = county_raster(tmp_path / "r2020.tif")
    with open(raster_path, "rb") as handle:
        raster_id = bureau.post("/api/rasters/", {"file": handle, "epoch": 2020, "legend": "clcd"},
                                format="multipart").json()["id"]
    features = [parcel_feature("F-1", 452_005, 3_584_505, 452_495, 3_585_995),
                parcel_feature("G-1", 453_505, 3_584_505, 453_995, 3_585_995)]
    parcels = {"type": "FeatureCollection", "features": features}
    assert bureau.post("/api/parcels/", parcels, format="json").status_code == 201
    method_id = bureau.post("/api/methods/", {"kind": "pool_table", "parameters": {"pools": POOLS}},
                            format="json").json()["id"]
    run_id = bureau.post("/api/runs/", {"method_version": method_id, "raster": raster_id, "county": "510727"},
                         format="json").json()["id"]
    for _ in range(240):  # the worker picks the task up from Redis; poll (bounded) until it finishes
        run = bureau.get(f"/api/runs/{run_id}/").json()
        if run["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    assert run["status"] == "succeeded", run
    pools_csv = tmp_path / "pools.csv"
    pools_csv.write_text("lucode,c_above,c_below,c_soil,c_dead\n" + "".join(
        f"{p['lucode']},{p['c_above']},{p['c_below']},{p['c_soil']},{p['c_dead']}\n" for p in POOLS))
    parcels_file = tmp_path / "parcels.geojson"
    parcels_file.write_text(json.dumps(parcels))
    out = tmp_path / "out.json"
    # The service reads the stored, normalised copy; so does the command here (a different block layout sums
    # the same pixels in another order, which may change the last bit).
    from geo.models import Raster

    stored = Raster.objects.get(id=raster_id).path
    call_command("carbon_stock", "--raster", str(stored), "--pools", str(pools_csv), "--parcels",
                 str(parcels_file), "--output", str(out))
    command = json.loads(out.read_text())
    assert run["totals"]["stock_tC"] == command["totals"]["stock_tC"]
    results = bureau.get(f"/api/runs/{run_id}/results/").json()["results"]
    assert [r["figures"]["stock_tC"] for r in results] == [p["stock_tC"] for p in command["parcels"]]
