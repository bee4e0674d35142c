"""The run engine without the database: each raster opened once per run, its bytes checked first."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from shapely.geometry import box

from accounting.engine import RunInputs, account_parcels
from geo.errors import RasterFileChangedError
from tests.geo.helpers import write_tif

# One pool table: class 2 holds 100 + 20 + 60 + 10 = 190 t C/ha, class 4 holds 50 t C/ha.
POOLS = {"pools": [{"lucode": 2, "c_above": 100.0, "c_below": 20.0, "c_soil": 60.0, "c_dead": 10.0},
                   {"lucode": 4, "c_above": 5.0, "c_below": 5.0, "c_soil": 40.0, "c_dead": 0.0}]}
X0, Y0 = 452_000.0, 3_586_000.0  # UTM 48N, near Pingwu
GRID_10M = Affine(10, 0, X0, 0, -10, Y0)


def two_class_raster(path: Path) -> Path:
    """1024 x 400 pixels of 10 m in 64-row blocks (a job over all rows reads 8 strips): class 2 west of column
    200, class 4 east of it."""
    classes = np.full((1024, 400), 4, np.uint8)
    classes[:, :200] = 2
    return write_tif(path, classes, crs="EPSG:32648", transform=GRID_10M, tiled=True, blockxsize=64, blockysize=64)


def strips_parcels():
    """Ten parcels, each 2 columns wide and 1020 rows tall, so that every parcel reaches every strip."""
    return [box(X0 + 200 * i + 10, Y0 - 10_210, X0 + 200 * i + 30, Y0 - 10) for i in range(2)] + \
        [box(X0 + 2_500 + 100 * i, Y0 - 10_210, X0 + 2_520 + 100 * i, Y0 - 10) for i in range(8)]


@pytest.fixture
def opens(monkeypatch):
    seen = []
    real_open = rasterio.open

    def counting(path, *args, **kwargs):
        seen.append(Path(str(path)).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting)
    return seen


@pytest.mark.parametrize("area_basis", ["ellipsoidal", "grid"])
def test_each_raster_is_opened_once_per_run(tmp_path, opens, area_basis):
    """Eight strips, a grid-hectare look-up and two epochs: one open of each file (reading by strips used to
    reopen the file for every strip, 9 or 10 opens each here)."""
    first = two_class_raster(tmp_path / "e2020.tif")
    second = two_class_raster(tmp_path / "e2030.tif")
    opens.clear()
    outcome = account_parcels(RunInputs(
        raster_path=first, alt_raster_path=second, years=(2020, 2030), geometries=strips_parcels(),
        geometries_crs="EPSG:32648", method_kind="pool_table", method_parameters=POOLS, area_basis=area_basis))
    assert sorted(opens) == ["e2020.tif", "e2030.tif"]
    # Parcel 0 covers columns 1-2 (class 2), 1020 rows: 20 m x 10 200 m = 20.4 ha of grid at 190 t C/ha.
    figures = outcome.parcels[0].figures
    if area_basis == "grid":
        assert figures["stock_tC"] == pytest.approx(20.4 * 190.0, rel=1e-12)
    else:  # 48 km west of the central meridian the UTM scale is k0 (1 + 2.8e-5): 0.07 % more land than grid
        assert figures["stock_tC"] == pytest.approx(20.4 * 190.0, rel=1e-3)
    assert outcome.parcels[2].figures["class_area_ha"].keys() == {"4"}


def test_whole_raster_run_opens_the_raster_once(tmp_path, opens):
    path = two_class_raster(tmp_path / "lc.tif")
    opens.clear()
    outcome = account_parcels(RunInputs(raster_path=path, geometries=[None], method_kind="pool_table",
                                        method_parameters=POOLS, area_basis="grid"))
    assert opens == ["lc.tif"]
    # 1024 rows x 200 columns of each class at 0.01 ha per pixel.
    assert outcome.totals["stock_tC"] == pytest.approx(2048 * (190.0 + 50.0), rel=1e-12)


def test_a_raster_whose_bytes_changed_is_refused_before_it_is_read(tmp_path, opens):
    path = two_class_raster(tmp_path / "lc.tif")
    recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    inputs = dict(raster_path=path, geometries=strips_parcels()[:1], geometries_crs="EPSG:32648",
                  method_kind="pool_table", method_parameters=POOLS, area_basis="grid")
    assert account_parcels(RunInputs(**inputs, raster_sha256=recorded)).totals["stock_tC"] == pytest.approx(
        20.4 * 190.0, rel=1e-12)
    with rasterio.open(path, "r+") as dataset:  # one pixel of parcel 0 becomes class 4
        dataset.write(np.array([[4]], np.uint8), 1, window=rasterio.windows.Window(1, 1, 1, 1))
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    opens.clear()
    with pytest.raises(RasterFileChangedError, match=f"raster file lc.tif has sha256 {found}, want {recorded}"):
        account_parcels(RunInputs(**inputs, raster_sha256=recorded))
    assert opens == []


# --- Monte Carlo seeds ------------------------------------------------------------------------------------------

# Only the above-ground density is uncertain: ±20 % (95 % half-width).
POOLS_U = {**POOLS, "uncertainty_pct": {"c_above": 20.0}}


def expected_interval(run_seed: int, key: str, area_ha: float, pools: dict) -> list[float]:
    """The 2.5 and 97.5 percentiles of a one-class parcel's stock, drawn independently of the engine.

    Seed: sha256("<run seed>:<key>"), first 8 bytes big-endian. Draws: one standard normal row per parameter key,
    keys in sorted order (area_ha[c], c_above[c], c_below[c], c_dead[c], c_soil[c]); only c_above varies, as
    density × (1 + U / 100 / z95 × z).
    """
    seed = int.from_bytes(hashlib.sha256(f"{run_seed}:{key}".encode()).digest()[:8], "big")
    z = np.random.default_rng(seed).standard_normal((5, 20_000))
    sigma = 20.0 / 100 / 1.959963984540054
    stock = area_ha * (pools["c_above"] * (1 + sigma * z[1]) + pools["c_below"] + pools["c_soil"] + pools["c_dead"])
    return list(np.percentile(stock, [2.5, 97.5]))


def mc_run(path, parcels, keys, seed):
    return account_parcels(RunInputs(
        raster_path=path, geometries=parcels, geometries_crs="EPSG:32648", labels=keys, parcel_keys=keys,
        method_kind="pool_table", method_parameters=POOLS_U, uncertainty_approach="approach2", seed=seed,
        area_basis="grid"))


def test_a_parcels_interval_does_not_depend_on_the_other_parcels_of_its_run(tmp_path):
    """P alone, and P third after R and Q: the same interval, the one its own seed gives (a seed by position
    would have drawn P's interval from seed + 0 alone and seed + 2 among the others)."""
    path = two_class_raster(tmp_path / "lc.tif")
    p, q, r = strips_parcels()[0], strips_parcels()[1], strips_parcels()[5]
    alone = mc_run(path, [p], ["510727/P"], seed=11)
    among = mc_run(path, [r, q, p], ["510727/R", "510727/Q", "510727/P"], seed=11)
    interval = alone.parcels[0].figures["stock_ci95_tC"]
    assert among.parcels[2].figures["stock_ci95_tC"] == interval
    # 20.4 ha of class 2 (grid hectares: columns 1-2, 1020 rows of 10 m).
    assert interval == pytest.approx(expected_interval(11, "510727/P", 20.4, POOLS["pools"][0]), rel=1e-12)
    assert among.parcels[1].figures["stock_ci95_tC"] == pytest.approx(
        expected_interval(11, "510727/Q", 20.4, POOLS["pools"][0]), rel=1e-12)
    assert interval != among.parcels[1].figures["stock_ci95_tC"]  # Q, as much forest as P, draws its own


def test_the_totals_interval_is_reproducible_for_a_seed(tmp_path):
    """The same seed gives the same totals to the bit; another seed another interval. The total combines the
    parcels' intervals by IPCC Eq 3.2 on each side: Σx ∓ √Σ(x − bound)²."""
    path = two_class_raster(tmp_path / "lc.tif")
    parcels, keys = strips_parcels()[:4], ["510727/A", "510727/B", "510727/C", "510727/D"]
    first, again = mc_run(path, parcels, keys, seed=11), mc_run(path, parcels, keys, seed=11)
    other = mc_run(path, parcels, keys, seed=12)
    assert first.totals == again.totals
    assert first.totals["stock_ci95_tC"] != other.totals["stock_ci95_tC"]
    stocks = [p.figures["stock_tC"] for p in first.parcels]
    bounds = [p.figures["stock_ci95_tC"] for p in first.parcels]
    below = sum((x - lo) ** 2 for x, (lo, _) in zip(stocks, bounds, strict=True)) ** 0.5
    above = sum((hi - x) ** 2 for x, (_, hi) in zip(stocks, bounds, strict=True)) ** 0.5
    assert first.totals["stock_ci95_tC"] == pytest.approx([sum(stocks) - below, sum(stocks) + above], rel=1e-12)
