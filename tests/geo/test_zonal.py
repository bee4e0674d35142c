"""geo.zonal on hand-made rasters whose answers are worked out by hand or by an independent formula.

Projected cases sit on the central meridian of UTM zone 50N (117°E, EPSG:32650), where the Transverse Mercator
scale is exactly k0 = 0.9996, so one grid m² is 1 / 0.9996² m² on the ellipsoid.
"""

import subprocess
import sys

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, box

from geo.area import geodesic_area_ha
from geo.zonal import (
    ZonalError,
    class_areas,
    class_transitions,
    coverage_fractions,
    geographic_cell_area_ha,
)
from geo.zonal_files import zonal_class_areas, zonal_transitions

UTM50 = CRS.from_epsg(32650)
K0_AREA = 0.9996**2  # grid area / ellipsoidal area on the central meridian
X_CM = 500_000.0  # easting of the central meridian
Y0 = 3_500_000.0  # about 31.6°N
GRID_10M = Affine(10.0, 0.0, X_CM, 0.0, -10.0, Y0)  # 10 m pixels, top-left on the central meridian


def ha(grid_m2: float) -> float:
    """Ellipsoidal hectares of `grid_m2` square metres of UTM grid on the central meridian."""
    return grid_m2 / K0_AREA / 10_000


def write_tif(path, array, transform, crs, nodata=None, blocksize=None):
    profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1, dtype=array.dtype.name,
                   crs=crs, transform=transform, nodata=nodata)
    if blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


# -- coverage fractions -------------------------------------------------------------------------------------------


def test_coverage_fractions_of_cells_cut_in_half_and_on_a_diagonal():
    """Half cells count 0.5, quarter cells 0.25, a diagonal cuts its cells in half."""
    half = coverage_fractions(box(0.5, 0.0, 2.5, 1.0), 2, 4)
    assert half.tolist() == [[0.5, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]]
    quarter = coverage_fractions(box(0.5, 0.5, 1.5, 1.5), 2, 2)
    np.testing.assert_allclose(quarter, [[0.25, 0.25], [0.25, 0.25]], atol=1e-15)
    triangle = coverage_fractions(Polygon([(0, 0), (3, 0), (0, 3)]), 3, 3)
    np.testing.assert_allclose(triangle, [[1, 1, 0.5], [1, 0.5, 0], [0.5, 0, 0]], atol=1e-15)


def test_coverage_fractions_hole_and_either_ring_orientation():
    """A hole removes its cells whatever way the rings run; a multipolygon adds its parts."""
    outer = [(0, 0), (4, 0), (4, 3), (0, 3)]
    hole = [(1, 1), (2, 1), (2, 2), (1, 2)]
    expected = np.ones((3, 4))
    expected[1, 1] = 0.0
    for shell in (outer, outer[::-1]):
        for inner in (hole, hole[::-1]):
            np.testing.assert_allclose(coverage_fractions(Polygon(shell, [inner]), 3, 4), expected, atol=1e-15)
    two = MultiPolygon([box(0, 0, 1, 1), box(2.5, 1, 4, 2)])
    np.testing.assert_allclose(coverage_fractions(two, 2, 4), [[1, 0, 0, 0], [0, 0, 0.5, 1]], atol=1e-15)


def test_coverage_fractions_match_shapely_cell_intersections():
    """Independent check: area of (cell ∩ polygon) by shapely's overlay, cell by cell, on an irregular polygon."""
    rng = np.random.default_rng(7)
    points = shapely.multipoints(rng.uniform(1, 19, (60, 2)))
    polygon = shapely.concave_hull(points, ratio=0.2).buffer(0.73, quad_segs=5)
    cells = np.array([[box(j, i, j + 1, i + 1) for j in range(21)] for i in range(21)])
    expected = shapely.area(shapely.intersection(cells, polygon))
    np.testing.assert_allclose(coverage_fractions(polygon, 21, 21), expected, rtol=0, atol=1e-12)


# -- class areas, projected ---------------------------------------------------------------------------------------


def test_parcel_cutting_pixels_in_half():
    """Columns 0 and 3 are cut in half: 2 rows x (0.5 + 1 + 1 + 0.5) pixels, split by class."""
    classes = np.array([[1, 1, 2, 2], [3, 3, 3, 3], [9, 9, 9, 9]], dtype=np.uint8)
    parcel = box(X_CM + 5, Y0 - 20, X_CM + 35, Y0)  # x 0.5..3.5 px, rows 0..1
    result = class_areas(classes, GRID_10M, UTM50, parcel, nodata=None)
    assert result.pixel_count_by_class == pytest.approx({1: 1.5, 2: 1.5, 3: 3.0}, rel=1e-12)
    assert result.area_ha_by_class == pytest.approx({1: ha(150), 2: ha(150), 3: ha(300)}, rel=1e-9)
    assert result.nodata_ha == 0.0
    assert result.outside_ha == 0.0
    assert result.geodesic_area_ha == pytest.approx(ha(600), rel=1e-7)


def test_nodata_inside_a_parcel():
    """Nodata pixels count in nodata_ha, by their covered fraction too, and in no class."""
    classes = np.array([[5, 255, 5], [255, 5, 5]], dtype=np.uint8)
    parcel = box(X_CM, Y0 - 20, X_CM + 25, Y0)  # half of column 2
    result = class_areas(classes, GRID_10M, UTM50, parcel, nodata=255)
    assert result.pixel_count_by_class == pytest.approx({5: 3.0}, rel=1e-12)  # 1 + 0.5 + 1 + 0.5
    assert result.nodata_pixel_count == pytest.approx(2.0, rel=1e-12)
    assert result.nodata_ha == pytest.approx(ha(200), rel=1e-9)
    assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-7)


def test_parcel_partly_outside_the_raster():
    """20 m x 40 m of the parcel lie west of the raster: that part is outside_ha, the rest is counted."""
    classes = np.full((4, 4), 7, dtype=np.uint8)
    parcel = box(X_CM - 20, Y0 - 40, X_CM + 15, Y0)  # 35 m x 40 m, 15 m inside
    result = class_areas(classes, GRID_10M, UTM50, parcel, nodata=None)
    assert result.pixel_count_by_class == pytest.approx({7: 6.0}, rel=1e-12)
    assert result.area_ha_by_class[7] == pytest.approx(ha(600), rel=1e-9)
    # West of the central meridian the scale grows by (x/R)²/2 ~ 5e-12: still k0 to 1e-9.
    assert result.outside_ha == pytest.approx(ha(800), rel=1e-7)
    assert result.total_ha == pytest.approx(ha(1400), rel=1e-7)


def test_parcel_wholly_outside_and_empty():
    classes = np.ones((2, 2), dtype=np.uint8)
    far = class_areas(classes, GRID_10M, UTM50, box(X_CM + 100, Y0, X_CM + 200, Y0 + 100), nodata=None)
    assert far.area_ha_by_class == {}
    assert far.outside_ha == pytest.approx(ha(10_000), rel=1e-6)
    empty = class_areas(classes, GRID_10M, UTM50, Polygon(), nodata=None)
    assert (empty.area_ha_by_class, empty.total_ha, empty.geodesic_area_ha) == ({}, 0.0, 0.0)


def test_signed_and_wide_class_codes():
    """int8 codes below zero and int32 codes beyond 255 keep their values."""
    parcel = box(X_CM, Y0 - 10, X_CM + 20, Y0)
    signed = class_areas(np.array([[-3, 4]], dtype=np.int8), GRID_10M, UTM50, parcel, nodata=None)
    assert signed.pixel_count_by_class == pytest.approx({-3: 1.0, 4: 1.0})
    wide = class_areas(np.array([[70000, 300]], dtype=np.int32), GRID_10M, UTM50, parcel, nodata=300)
    assert wide.pixel_count_by_class == pytest.approx({70000: 1.0})
    assert wide.nodata_pixel_count == pytest.approx(1.0)


def test_crs_in_us_feet():
    """Linear units that are not metres: 1 US survey foot = 1200/3937 m (EPSG:2227, California zone 3)."""
    crs = CRS.from_epsg(2227)
    ft = 1200 / 3937
    transform = Affine(30.0, 0.0, 6_000_000.0, 0.0, -30.0, 2_100_000.0)  # 30 ft pixels
    parcel = box(6_000_000.0, 2_100_000.0 - 60, 6_000_000.0 + 90, 2_100_000.0)  # 3 x 2 pixels
    result = class_areas(np.ones((2, 3), dtype=np.uint8), transform, crs, parcel, nodata=None)
    assert result.pixel_count_by_class == pytest.approx({1: 6.0})
    grid_ha = 6 * (30 * ft) ** 2 / 10_000
    assert result.area_ha_by_class[1] == pytest.approx(result.geodesic_area_ha, rel=1e-6)
    assert result.area_ha_by_class[1] != pytest.approx(grid_ha, rel=1e-5)  # the grid area is off by the scale


def test_sum_identity_projected_far_from_the_central_meridian():
    """Near a UTM zone edge the grid overstates area by ~0.2%; the engine's hectares stay on the ellipsoid."""
    to_utm = Transformer.from_crs(4326, 32650, always_xy=True)
    x_edge, y_edge = to_utm.transform(119.9, 10.0)  # 2.9° east of 117°E, near the equator: largest distortion
    transform = Affine(10.0, 0.0, round(x_edge) - 5000.0, 0.0, -10.0, round(y_edge) + 5000.0)
    rng = np.random.default_rng(3)
    classes = rng.integers(1, 5, (1000, 1000), dtype=np.uint8)
    classes[400:450, 300:900] = 0
    lonlat = shapely.Point(119.9, 10.0).buffer(0.03, quad_segs=16)  # a 3.3 km disc, all inside
    lonlat = shapely.union(lonlat, box(119.87, 10.0, 119.95, 10.01))  # and a strip reaching out of the raster
    results = zonal_like_class_areas(classes, transform, "EPSG:32650", [lonlat], "EPSG:4326", nodata=0)
    result = results[0]
    assert result.outside_ha > 1.0
    assert result.nodata_ha > 1.0
    assert result.geodesic_area_ha == pytest.approx(geodesic_area_ha(lonlat), rel=1e-9)
    assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-5)
    grid_ha = sum(result.pixel_count_by_class.values()) + result.nodata_pixel_count
    grid_ha *= 0.01  # 100 m² per pixel
    inside_geodesic = result.geodesic_area_ha - result.outside_ha
    assert grid_ha / inside_geodesic - 1 > 1e-3  # uncorrected grid hectares would break the 0.1% identity


def zonal_like_class_areas(classes, transform, crs, geometries, geometries_crs, *, nodata):
    """Reproject like the path-level API does, then call the array-level function."""
    to_raster = Transformer.from_crs(geometries_crs, crs, always_xy=True)
    out = []
    for geometry in geometries:
        in_raster = shapely.transform(geometry, lambda xy: np.column_stack(to_raster.transform(xy[:, 0], xy[:, 1])))
        out.append(class_areas(classes, transform, crs, in_raster, nodata=nodata))
    return out


# -- geographic ---------------------------------------------------------------------------------------------------


def parallel_cell_area_m2(lon0, lon1, lat0, lat1, n=400):
    """Ellipsoidal area of a lon/lat cell bounded by parallels, by pyproj.Geod on a densified ring."""
    lons = np.concatenate([np.linspace(lon0, lon1, n), np.full(1, lon1), np.linspace(lon1, lon0, n), [lon0]])
    lats = np.concatenate([np.full(n, lat0), [lat1], np.full(n, lat1), [lat0]])
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)
    return abs(area)


def test_geographic_row_areas_at_high_latitude_match_geod():
    """Rows of 0.01° cells at 69.99-70°N and near the pole, against Geod on the densified cell."""
    transform = Affine(0.01, 0.0, 20.0, 0.0, -0.01, 70.0)
    rows = geographic_cell_area_ha(transform, 3, "EPSG:4326")
    for r in range(3):
        expected_ha = parallel_cell_area_m2(20.0, 20.01, 70.0 - 0.01 * (r + 1), 70.0 - 0.01 * r) / 10_000
        assert rows[r] == pytest.approx(expected_ha, rel=1e-8)
    near_pole = geographic_cell_area_ha(Affine(1.0, 0.0, 0.0, 0.0, -1.0, 90.0), 1, "EPSG:4326")
    assert near_pole[0] * 10_000 == pytest.approx(parallel_cell_area_m2(0.0, 1.0, 89.0, 90.0, n=2000), rel=1e-6)


def test_geographic_raster_at_high_latitude():
    """A parcel over half of two cells' width at 70°N: areas are the exact ellipsoidal cell areas."""
    transform = Affine(0.01, 0.0, 20.0, 0.0, -0.01, 70.0)
    classes = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    parcel = box(20.005, 69.98, 20.015, 70.0)  # the east half of column 0 and west half of column 1
    result = class_areas(classes, transform, "EPSG:4326", parcel, nodata=None)
    row0 = parallel_cell_area_m2(20.0, 20.01, 69.99, 70.0) / 10_000
    row1 = parallel_cell_area_m2(20.0, 20.01, 69.98, 69.99) / 10_000
    assert result.pixel_count_by_class == pytest.approx({10: 0.5, 20: 0.5, 30: 0.5, 40: 0.5}, rel=1e-9)
    assert result.area_ha_by_class == pytest.approx({10: row0 / 2, 20: row0 / 2, 30: row1 / 2, 40: row1 / 2},
                                                    rel=1e-8)
    # The parcel's own geodesic area: its north and south sides are geodesics, not parallels (~1e-6 apart here).
    assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-5)


def test_sum_identity_geographic_cgcs2000():
    """EPSG:4490 raster (CGCS2000) near Pingwu, with nodata, an irregular parcel running off the raster."""
    transform = Affine(1 / 3600, 0.0, 104.4, 0.0, -1 / 3600, 32.5)  # 1 arc-second pixels
    rng = np.random.default_rng(11)
    classes = rng.integers(1, 10, (720, 720), dtype=np.uint8)
    classes[100:200] = 0
    parcel = shapely.Point(104.55, 32.38).buffer(0.08, quad_segs=32)  # crosses the raster's south and east edges
    result = class_areas(classes, transform, "EPSG:4490", parcel, nodata=0)
    assert result.outside_ha > 100 and result.nodata_ha > 10
    assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-5)


# -- tiling and determinism --------------------------------------------------------------------------------------


def test_parcels_tiling_a_region_add_up_to_the_region():
    """Cut a disc by a wiggly line and a straight one: the four parts' class areas sum to the disc's."""
    rng = np.random.default_rng(5)
    classes = rng.integers(0, 6, (300, 300), dtype=np.uint8)
    region = shapely.Point(X_CM + 1500, Y0 - 1500).buffer(1234.5, quad_segs=64)
    xs = np.linspace(X_CM - 10, X_CM + 3010, 97)
    wiggle = shapely.LineString(np.column_stack([xs, Y0 - 1500 + 200 * np.sin(xs / 170.0)]))
    cutter = shapely.union(wiggle, shapely.LineString([(X_CM + 1333.3, Y0 + 10), (X_CM + 1777.7, Y0 - 3010)]))
    parts = list(shapely.get_parts(shapely.polygonize_full([shapely.union(region.boundary, cutter)])[0]))
    parts = [p for p in parts if region.contains(p.representative_point())]
    assert len(parts) == 4
    whole = class_areas(classes, GRID_10M, UTM50, region, nodata=0)
    pieces = [class_areas(classes, GRID_10M, UTM50, p, nodata=0) for p in parts]
    for cls, area in whole.area_ha_by_class.items():
        assert sum(p.area_ha_by_class.get(cls, 0.0) for p in pieces) == pytest.approx(area, rel=1e-12)
    assert sum(p.nodata_ha for p in pieces) == pytest.approx(whole.nodata_ha, rel=1e-12)


def test_file_api_worker_processes_and_progress(tmp_path, monkeypatch):
    """Several strips in two worker processes: the same numbers as in one thread and as the array function."""
    monkeypatch.setattr("geo.zonal_files.PROCESS_JOB_CELLS", 0)  # this small job would otherwise run in-process
    rng = np.random.default_rng(9)
    classes = rng.integers(1, 4, (700, 500), dtype=np.uint8)
    path = write_tif(tmp_path / "lc.tif", classes, GRID_10M, "EPSG:32650", nodata=3, blocksize=64)
    parcels = [shapely.Point(X_CM + 2500, Y0 - 3500).buffer(r, quad_segs=24) for r in (300.5, 2000.0, 4000.0)]
    seen = []
    threaded = zonal_class_areas(path, parcels, "EPSG:32650", workers=2, on_progress=lambda d, t: seen.append((d, t)))
    single = zonal_class_areas(path, parcels, UTM50, workers=1)
    assert threaded == single
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] > 1
    for parcel, result in zip(parcels, threaded, strict=True):
        direct = class_areas(classes, GRID_10M, UTM50, parcel, nodata=3)
        assert result.pixel_count_by_class == pytest.approx(direct.pixel_count_by_class, rel=1e-12)
        assert result.area_ha_by_class == pytest.approx(direct.area_ha_by_class, rel=1e-12)
        assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-5)


def test_no_geometries_and_geometries_off_the_raster(tmp_path):
    """An empty list gives an empty list; a parcel beside the raster is all outside_ha."""
    path = write_tif(tmp_path / "lc.tif", np.ones((4, 4), np.uint8), GRID_10M, "EPSG:32650")
    assert zonal_class_areas(path, [], "EPSG:32650") == []
    [beside] = zonal_class_areas(path, [box(X_CM + 50, Y0 - 40, X_CM + 90, Y0)], "EPSG:32650")
    assert beside.area_ha_by_class == {}
    assert beside.outside_ha == pytest.approx(ha(1600), rel=1e-7)


def test_geometries_in_another_crs_are_reprojected(tmp_path):
    """A parcel given in WGS84 lon/lat gives the result of the same parcel given in the raster's CRS."""
    classes = np.arange(100, dtype=np.uint8).reshape(10, 10)
    path = write_tif(tmp_path / "lc.tif", classes, GRID_10M, "EPSG:32650")
    in_utm = box(X_CM + 12.5, Y0 - 77.5, X_CM + 66.6, Y0 - 3.3)
    to_lonlat = Transformer.from_crs(32650, 4326, always_xy=True)
    in_lonlat = shapely.transform(in_utm, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
    [a] = zonal_class_areas(path, [in_utm], "EPSG:32650")
    [b] = zonal_class_areas(path, [in_lonlat], "EPSG:4326")
    assert b.pixel_count_by_class == pytest.approx(a.pixel_count_by_class, rel=1e-7, abs=1e-7)


# -- two epochs ----------------------------------------------------------------------------------------------------


def test_transitions_by_hand():
    """Half of column 1 is cut; nodata in either epoch drops out of the transitions only."""
    before = np.array([[1, 1, 2], [2, 2, 0]], dtype=np.uint8)
    after = np.array([[1, 3, 3], [9, 2, 2]], dtype=np.uint8)
    parcel = box(X_CM, Y0 - 20, X_CM + 15, Y0)  # column 0 whole, column 1 half
    result = class_transitions(before, after, GRID_10M, UTM50, parcel, nodata_1=0, nodata_2=9)
    assert result.transition_ha == pytest.approx({(1, 1): ha(100), (1, 3): ha(50), (2, 2): ha(50)}, rel=1e-9)
    assert result.epoch_1.area_ha_by_class == pytest.approx({1: ha(150), 2: ha(150)}, rel=1e-9)
    assert result.epoch_2.area_ha_by_class == pytest.approx({1: ha(100), 2: ha(50), 3: ha(50)}, rel=1e-9)
    assert result.epoch_2.nodata_ha == pytest.approx(ha(100), rel=1e-9)


def test_second_epoch_on_another_grid_is_resampled_nearest(tmp_path):
    """Epoch 2 at 5 m, offset by 2.5 m: nearest neighbour takes the 5 m pixel under each 10 m pixel's centre."""
    before = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    path_1 = write_tif(tmp_path / "e1.tif", before, GRID_10M, "EPSG:32650", nodata=0)
    fine = np.full((6, 6), 8, dtype=np.uint8)
    # 5 m grid starting 2.5 m west and north of the 10 m grid: the centre (5, -5) of pixel (0, 0) falls in
    # fine pixel (1, 1); centre (15, -5) in (1, 3); (5, -15) in (3, 1); (15, -15) in (3, 3).
    fine[1, 1], fine[1, 3], fine[3, 1], fine[3, 3] = 11, 12, 13, 14
    fine_transform = Affine(5.0, 0.0, X_CM - 2.5, 0.0, -5.0, Y0 + 2.5)
    path_2 = write_tif(tmp_path / "e2.tif", fine, fine_transform, "EPSG:32650", nodata=0)
    [result] = zonal_transitions(path_1, path_2, [box(X_CM, Y0 - 20, X_CM + 20, Y0)], "EPSG:32650")
    assert result.transition_ha == pytest.approx({(1, 11): ha(100), (2, 12): ha(100), (3, 13): ha(100),
                                                  (4, 14): ha(100)}, rel=1e-9)


# -- refusals and purity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("classes", "transform", "parcel", "message"),
    [
        (np.ones((2, 2), np.float32), GRID_10M, box(X_CM, Y0 - 10, X_CM + 10, Y0), "integer class codes"),
        (np.ones((2, 2), np.uint8), Affine(10, 1, X_CM, 0, -10, Y0), box(X_CM, Y0 - 10, X_CM + 10, Y0), "rotated"),
        (np.ones((2, 2), np.uint8), GRID_10M, shapely.Point(X_CM, Y0), "Point, want Polygon"),
        (np.ones((2, 2), np.uint8), GRID_10M, Polygon([(X_CM, Y0), (X_CM + 10, Y0 - 10), (X_CM + 10, Y0),
                                                       (X_CM, Y0 - 10)]), "invalid: Self-intersection"),
        (np.ones(4, np.uint8), GRID_10M, box(X_CM, Y0 - 10, X_CM + 10, Y0), "2-D"),
    ],
)
def test_refusals(classes, transform, parcel, message):
    with pytest.raises(ZonalError, match=message):
        class_areas(classes, transform, UTM50, parcel, nodata=None)


def test_import_pulls_in_no_django():
    """geo.zonal is a pure core: a fresh interpreter without settings imports it and no Django module."""
    code = "import sys, geo.zonal; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    env = {"PATH": "", "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
