"""geo.zonal_files, the file layer around the pure zonal engine: one handle per raster, hashes checked before a
read, the pure core opening nothing.

Hand-made rasters on the central meridian of UTM 50N (EPSG:32650), where one grid m² is 1 / 0.9996² m² on the
ellipsoid (as in test_zonal.py).
"""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from geo.errors import RasterFileChangedError, ZonalError
from geo.zonal import strip_histograms, zonal_job
from geo.zonal_files import open_land_cover, zonal_class_areas, zonal_transitions
from tests.geo.helpers import write_tif

X_CM, Y0 = 500_000.0, 3_500_000.0
GRID_10M = Affine(10.0, 0.0, X_CM, 0.0, -10.0, Y0)
K0_AREA = 0.9996**2


def ha(grid_m2: float) -> float:
    return grid_m2 / K0_AREA / 10_000


def striped_raster(path: Path) -> Path:
    """768 x 300 pixels in 32-row blocks (so a job has 8 strips of 96 rows): class 1 west of column 100, 2 east."""
    classes = np.full((768, 300), 2, np.uint8)
    classes[:, :100] = 1
    return write_tif(path, classes, crs="EPSG:32650", transform=GRID_10M, tiled=True, blockxsize=32, blockysize=32)


@pytest.fixture
def opens(monkeypatch):
    """Every path rasterio.open is called with, in order."""
    seen = []
    real_open = rasterio.open

    def counting(path, *args, **kwargs):
        seen.append(Path(str(path)).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting)
    return seen


def test_a_raster_is_opened_once_for_all_its_strips(tmp_path, opens):
    """Eight strips, one open: a path is opened once per call, an open raster not again."""
    path = striped_raster(tmp_path / "lc.tif")
    parcel = box(X_CM + 995, Y0 - 7_675, X_CM + 1_005, Y0 - 5)  # half of columns 99 and 100, rows 0-767
    with rasterio.open(path) as dataset:
        rows = dataset.block_shapes[0][0]
    job = zonal_job(GRID_10M, "EPSG:32650", 768, 300, [parcel], block_rows=rows)
    assert len(job.strips) == 8
    opens.clear()
    [by_path] = zonal_class_areas(path, [parcel], "EPSG:32650", workers=1)
    assert opens == ["lc.tif"]
    with open_land_cover(path) as raster:
        opens.clear()
        [by_handle] = zonal_class_areas(raster, [parcel], "EPSG:32650", workers=1)
        [again] = zonal_class_areas(raster, [parcel], "EPSG:32650", workers=1)
        assert opens == []
    # 767 rows' height (the parcel's top and bottom edges sit half a pixel inside the raster's) x 0.5 px each.
    assert by_path.pixel_count_by_class == pytest.approx({1: 0.5 * 767, 2: 0.5 * 767}, rel=1e-12)
    # 1 km east of the central meridian the areal scale exceeds k0² by about (x/R)² = 2.5e-8.
    assert by_path.area_ha_by_class[1] == pytest.approx(ha(5 * 7_670), rel=1e-7)
    assert by_handle == by_path == again


def test_two_epochs_open_each_raster_once(tmp_path, opens):
    """A second epoch on another grid (5 m, so through a warped VRT) is opened once too."""
    first = striped_raster(tmp_path / "e1.tif")
    fine = np.full((1536, 600), 3, np.uint8)
    second = write_tif(tmp_path / "e2.tif", fine, crs="EPSG:32650", transform=Affine(5, 0, X_CM, 0, -5, Y0),
                       tiled=True, blockxsize=64, blockysize=64)
    parcel = box(X_CM + 10, Y0 - 7_670, X_CM + 30, Y0 - 10)  # columns 1-2, rows 1-766: class 1 -> 3
    opens.clear()
    [result] = zonal_transitions(first, second, [parcel], "EPSG:32650", workers=1)
    assert sorted(opens) == ["e1.tif", "e2.tif"]
    assert result.transition_ha == pytest.approx({(1, 3): ha(20 * 7_660)}, rel=1e-9)


def test_open_land_cover_checks_the_recorded_hash_before_reading(tmp_path, opens):
    """The right sha256 opens the file; a changed byte is refused, naming both hashes, before GDAL opens it."""
    path = striped_raster(tmp_path / "lc.tif")
    recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    with open_land_cover(path, sha256=recorded) as raster:
        assert (raster.width, raster.height, raster.block_rows, raster.nodata) == (300, 768, 32, None)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte: image data, so the file is still a valid GeoTIFF
    path.write_bytes(bytes(data))
    found = hashlib.sha256(bytes(data)).hexdigest()
    opens.clear()
    with pytest.raises(RasterFileChangedError) as refused, open_land_cover(path, sha256=recorded):
        pass
    assert opens == []
    assert str(refused.value) == (f"raster file lc.tif has sha256 {found}, want {recorded} (recorded when it was "
                                  "stored): the file has changed since, so nothing was read from it")
    assert (refused.value.recorded_sha256, refused.value.found_sha256) == (recorded, found)
    assert isinstance(refused.value, ZonalError) and isinstance(refused.value, ValueError)


def test_an_open_raster_keeps_its_band(tmp_path):
    path = striped_raster(tmp_path / "lc.tif")
    with open_land_cover(path) as raster, pytest.raises(ZonalError, match="open on band 1, band 2 requested"):
        zonal_class_areas(raster, [box(X_CM, Y0 - 10, X_CM + 10, Y0)], "EPSG:32650", band=2)


def test_strip_arrays_must_have_the_strips_shape():
    job = zonal_job(GRID_10M, "EPSG:32650", 4, 4, [box(X_CM, Y0 - 20, X_CM + 20, Y0)], block_rows=4)
    [strip] = job.strips
    assert (strip.row0, strip.row1, strip.col0, strip.col1, strip.shape) == (0, 4, 0, 2, (4, 2))
    with pytest.raises(ZonalError, match=r"needs arrays of shape \(4, 2\), got \(4, 4\)"):
        strip_histograms(job, strip, [np.ones((4, 4), np.uint8)])
    with pytest.raises(ZonalError, match="takes 1 class array"):
        strip_histograms(job, strip, [np.ones((4, 2), np.uint8)] * 2)


def test_pure_core_imports_no_raster_io():
    """geo.zonal opens no file: a fresh interpreter importing it loads neither rasterio nor the file layer."""
    code = ("import sys, geo.zonal; print(sorted(m for m in sys.modules if m.split('.')[0] == 'rasterio'"
            " or m == 'geo.zonal_files'))")
    env = {"PATH": "", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
