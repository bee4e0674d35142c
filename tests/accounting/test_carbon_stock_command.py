"""The analyst's command on the InVEST Willamette sample, against InVEST's documented formula computed here."""

import csv
import json
from decimal import Decimal

import numpy as np
import pytest
import rasterio
from django.core.management import call_command
from django.core.management.base import CommandError
from pyproj import Proj

from tests.conftest import shared_path

PIXEL_HA = 30 * 30 / 10_000  # the sample's 30 m pixels: 0.09 ha


def invest_totals(current, future, table_path, *, price, discount_pct, change_pct, years):
    """InVEST Carbon (3.x user guide): stock = Σ pixels density(lucode) × pixel area; NPV of the change =
    price × Δc / n × Σ_{t=0}^{n-1} 1 / ((1 + r/100)^t (1 + c/100)^t). Computed from the raw files, pixel by
    pixel, with the csv module and numpy: none of Tanhui's code."""
    with open(table_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    density = {int(r["lucode"]): sum(float(r[k]) for k in ("C_above", "C_below", "C_soil", "C_dead")) for r in rows}

    def stock(path):
        with rasterio.open(path) as dataset:
            values = dataset.read(1)
            valid = values[values != dataset.nodata]
        lookup = np.zeros(256)
        for code, d in density.items():
            lookup[code] = d
        return float(np.sum(lookup[valid]) * PIXEL_HA)

    base, alt = stock(current), stock(future)
    factor = sum(1 / ((1 + discount_pct / 100) ** t * (1 + change_pct / 100) ** t) for t in range(years))
    return base, alt, alt - base, price * (alt - base) / years * factor


@pytest.fixture
def willamette():
    return (shared_path("data", "lulc_current_willamette.tif"), shared_path("data", "lulc_future_willamette.tif"),
            shared_path("data", "carbon_pools_willamette.csv"))


def run_command(tmp_path, *args) -> dict:
    out = tmp_path / "out.json"
    call_command("carbon_stock", *args, "--output", str(out))
    return json.loads(out.read_text())


def test_reproduces_invest_totals_on_grid_hectares(willamette, tmp_path):
    current, future, table = willamette
    base, alt, change, npv = invest_totals(current, future, table, price=43, discount_pct=7, change_pct=0, years=30)
    result = run_command(tmp_path, "--raster", str(current), "--pools", str(table), "--alt-raster", str(future),
                         "--years", "2020", "2050", "--price", "43", "--discount-rate", "7", "--price-change", "0",
                         "--currency", "USD", "--area-basis", "grid")
    totals = result["totals"]
    assert totals["stock_tC"] == pytest.approx(base, rel=1e-6)
    assert totals["alt_stock_tC"] == pytest.approx(alt, rel=1e-6)
    assert totals["change_tC"] == pytest.approx(change, rel=1e-6)
    assert float(totals["npv"]["amount"]) == pytest.approx(npv, rel=1e-6)
    assert totals["npv"]["currency"] == "USD"
    # 1,641,621 valid pixels of 0.09 ha (../shared/data/SOURCES.md)
    assert totals["valid_area_ha"] == pytest.approx(1_641_621 * PIXEL_HA, rel=1e-12)
    assert totals["stock_tCO2e"] == pytest.approx(base * 44 / 12, rel=1e-6)
    parcel = result["parcels"][0]
    assert parcel["parcel"] == "whole raster"
    assert parcel["class_area_ha"]["54"] == pytest.approx(299_075 * PIXEL_HA, rel=1e-9)


def test_ellipsoidal_hectares_differ_by_the_projection_scale(willamette, tmp_path):
    """By default areas are on the ellipsoid: UTM zone 10N shrinks areas near its central meridian by about
    k0² = 0.9996², so ellipsoidal stock = grid stock / (areal scale), the scale read from PROJ here."""
    current, _, table = willamette
    grid = run_command(tmp_path, "--raster", str(current), "--pools", str(table), "--area-basis", "grid")
    ellipsoidal = run_command(tmp_path, "--raster", str(current), "--pools", str(table))
    with rasterio.open(current) as dataset:
        x, y = (dataset.bounds.left + dataset.bounds.right) / 2, (dataset.bounds.bottom + dataset.bounds.top) / 2
    proj = Proj("EPSG:26910")
    lon, lat = proj(x, y, inverse=True)
    areal_scale = proj.get_factors(lon, lat).areal_scale
    ratio = ellipsoidal["totals"]["stock_tC"] / grid["totals"]["stock_tC"]
    # The scale varies by under 1e-4 across this 40 km wide raster near the central meridian.
    assert ratio == pytest.approx(1 / areal_scale, rel=1e-4)
    assert ratio > 1.0007


def test_parcels_that_tile_the_raster_add_up(willamette, tmp_path):
    current, _, table = willamette
    with rasterio.open(current) as dataset:
        left, bottom, right, top = dataset.bounds
        # split through pixel edges and through pixel centres alike
        mid_x = left + 30 * 600 + 15
        mid_y = bottom + 30 * 1000

    def square(x0, y0, x1, y1, code):
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {"type": "Feature", "properties": {"code": code}, "geometry": {"type": "Polygon", "coordinates": [ring]}}

    parcels = tmp_path / "quadrants.geojson"
    parcels.write_text(json.dumps({"type": "FeatureCollection", "features": [
        square(left, mid_y, mid_x, top, "NW"), square(mid_x, mid_y, right, top, "NE"),
        square(left, bottom, mid_x, mid_y, "SW"), square(mid_x, bottom, right, mid_y, "SE")]}))
    whole = run_command(tmp_path, "--raster", str(current), "--pools", str(table), "--area-basis", "grid")
    split = run_command(tmp_path, "--raster", str(current), "--pools", str(table), "--area-basis", "grid",
                        "--parcels", str(parcels), "--parcels-crs", "EPSG:26910")
    assert [p["parcel"] for p in split["parcels"]] == ["NW", "NE", "SW", "SE"]
    assert sum(p["stock_tC"] for p in split["parcels"]) == pytest.approx(whole["totals"]["stock_tC"], rel=1e-12)
    assert split["totals"]["stock_tC"] == pytest.approx(whole["totals"]["stock_tC"], rel=1e-12)


def test_csv_and_geojson_formats(willamette, tmp_path):
    current, future, table = willamette
    common = ["--raster", str(current), "--pools", str(table), "--alt-raster", str(future), "--years", "2020",
              "2050", "--price", "43", "--discount-rate", "7"]
    out_csv = tmp_path / "out.csv"
    call_command("carbon_stock", *common, "--format", "csv", "--output", str(out_csv))
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    pools = sum(float(rows[0][k]) for k in ("c_above_tC", "c_below_tC", "c_soil_tC", "c_dead_tC"))
    assert pools == pytest.approx(float(rows[0]["stock_tC"]), rel=1e-12)
    assert Decimal(rows[0]["npv"]) < 0  # the scenario loses carbon
    out_geojson = tmp_path / "out.geojson"
    call_command("carbon_stock", *common, "--format", "geojson", "--output", str(out_geojson))
    collection = json.loads(out_geojson.read_text())
    lon, lat = collection["features"][0]["geometry"]["coordinates"][0][0]
    assert -124 < lon < -122 and 44 < lat < 45  # the Willamette valley, Oregon, in WGS84
    assert collection["features"][0]["properties"]["stock_tC"] == pytest.approx(float(rows[0]["stock_tC"]))


def test_missing_class_is_refused_and_nothing_is_written(willamette, tmp_path):
    current, _, table = willamette
    short = tmp_path / "short.csv"
    lines = table.read_text().splitlines()
    short.write_text("\n".join(line for line in lines if not line.startswith(("54,", "57,"))) + "\n")
    out = tmp_path / "out.json"
    with pytest.raises(CommandError, match=r"land-cover classes \[54, 57\] have area"):
        call_command("carbon_stock", "--raster", str(current), "--pools", str(short), "--output", str(out))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [short]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--years", "2020", "2050"], "--alt-raster and --years go together"),
        (["--price", "forty"], "--price must be a number; got 'forty'"),
    ],
)
def test_bad_arguments(willamette, tmp_path, args, message):
    current, _, table = willamette
    with pytest.raises(CommandError, match=message):
        call_command("carbon_stock", "--raster", str(current), "--pools", str(table), *args)


def test_missing_file(tmp_path):
    with pytest.raises(CommandError, match="--raster: no such file"):
        call_command("carbon_stock", "--raster", str(tmp_path / "no.tif"), "--pools", str(tmp_path / "p.csv"))
