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
