"""geo.zonal on the real rasters in ../shared/data/ (SOURCES.md there), against exactextract and pixel counts."""

import numpy as np
import pytest
import rasterio
import shapely
from exactextract import exact_extract
from pyproj import CRS, Proj, Transformer
from shapely.geometry import box, mapping

from geo.zonal_files import zonal_class_areas, zonal_transitions
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data

WILLAMETTE_VALID_PX = 1_641_621  # SOURCES.md, measured with GDAL 3.6.2
WILLAMETTE_NODATA_PX = 861_304


def irregular_parcels(bounds, count, seed, size):
    """Irregular, non-convex polygons (concave hulls of random points, buffered) within `bounds`."""
    rng = np.random.default_rng(seed)
    left, bottom, right, top = bounds
    out = []
    for _ in range(count):
        cx, cy = rng.uniform(left, right), rng.uniform(bottom, top)
        points = shapely.multipoints(np.column_stack([cx + rng.normal(0, size, 40), cy + rng.normal(0, size, 40)]))
        out.append(shapely.concave_hull(points, ratio=0.3).buffer(size / 7, quad_segs=4))
    return out


def exactextract_pixels(path, parcels):
    """Coverage-weighted pixel count per class for each parcel: exactextract's frac × count."""
    features = [{"type": "Feature", "properties": {"i": i}, "geometry": mapping(p)} for i, p in enumerate(parcels)]
    out = []
    for feature in exact_extract(str(path), features, ["unique", "frac", "count"], output="geojson"):
        props = feature["properties"]
        out.append({int(c): f * props["count"] for c, f in zip(props["unique"], props["frac"], strict=True)})
    return out


def assert_pixels_match(ours, theirs, rel=1e-6):
    for mine, ref in zip(ours, theirs, strict=True):
        total = sum(ref.values())
        assert set(mine.pixel_count_by_class) == {c for c, v in ref.items() if v >= 1e-6}
        for cls, count in ref.items():
            assert mine.pixel_count_by_class.get(cls, 0.0) == pytest.approx(count, rel=rel, abs=rel * total)
        assert sum(mine.pixel_count_by_class.values()) == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize("name", ["lulc_current_willamette.tif", "nrcan_CAN_LC_2015_example.tif"])
def test_projected_rasters_agree_with_exactextract(name):
    """Irregular parcels (some crossing the raster's edge) on two real projected rasters: same coverage sums."""
    path = shared_path("data", name)
    with rasterio.open(path) as dataset:
        bounds, crs = tuple(dataset.bounds), dataset.crs.to_wkt()
    size = (bounds[2] - bounds[0]) / 15
    parcels = irregular_parcels(bounds, 12, seed=1, size=size)
    ours = zonal_class_areas(path, parcels, crs)
    assert_pixels_match(ours, exactextract_pixels(path, parcels))
    for result in ours:
        assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-3)
        assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-5)


def test_esa_worldcover_islands_agree_with_exactextract():
    """A few parcels over São Tomé and Príncipe on the 1.3 G-pixel geographic tile (coverage sums and areas)."""
    path = shared_path("data", "ESA_WorldCover_10m_2020_v100_N00E006_Map.tif")
    parcels = irregular_parcels((6.52, 0.15, 6.70, 0.38), 3, seed=2, size=0.015)
    parcels += irregular_parcels((7.36, 1.55, 7.44, 1.68), 2, seed=3, size=0.01)
    parcels.append(shapely.Point(6.75, 2.99).buffer(0.03))  # runs off the tile's north edge
    ours = zonal_class_areas(path, parcels, "EPSG:4326")
    assert_pixels_match(ours, exactextract_pixels(path, parcels))
    assert ours[0].area_ha_by_class.get(10, 0.0) > 100  # tree cover on São Tomé
    assert ours[-1].outside_ha > 100
    for result in ours:
        assert result.total_ha == pytest.approx(result.geodesic_area_ha, rel=1e-5)


def willamette_quadrants(dataset, margin=0.0):
    """Four boxes tiling the raster (plus `margin` beyond it), split through a pixel centre each way."""
    t = dataset.transform
    x_mid, y_mid = t @ (600.5, 900.5)  # pixel centres of column 600 and row 900
    left, bottom, right, top = dataset.bounds
    left, bottom, right, top = left - margin, bottom - margin, right + margin, top + margin
    return [box(left, y_mid, x_mid, top), box(x_mid, y_mid, right, top),
            box(left, bottom, x_mid, y_mid), box(x_mid, bottom, right, y_mid)]


def test_four_parcels_tiling_willamette_add_up_to_its_valid_area():
    """Shared edges through pixel centres: the four split those pixels in half and add up to the whole raster."""
    path = shared_path("data", "lulc_current_willamette.tif")
    with rasterio.open(path) as dataset:
        quadrants = willamette_quadrants(dataset, margin=90.0)
        crs = dataset.crs.to_wkt()
        classes = dataset.read(1)
        transform = dataset.transform
    [whole] = zonal_class_areas(path, [shapely.union_all(quadrants)], crs)
    parts = zonal_class_areas(path, quadrants, crs)
    valid_px = sum(sum(p.pixel_count_by_class.values()) for p in parts)
    assert valid_px == pytest.approx(WILLAMETTE_VALID_PX, rel=1e-12)
    assert sum(p.nodata_pixel_count for p in parts) == pytest.approx(WILLAMETTE_NODATA_PX, rel=1e-12)
    # Grid hectares are pixel count × 0.09 ha; ellipsoidal hectares divide each pixel by the UTM areal scale.
    assert valid_px * 0.09 == pytest.approx(WILLAMETTE_VALID_PX * 0.09, rel=1e-12)
    for cls, area in whole.area_ha_by_class.items():
        assert sum(p.area_ha_by_class.get(cls, 0.0) for p in parts) == pytest.approx(area, rel=1e-12)
    # Independent: PROJ's areal scale at every valid pixel centre.
    rows, cols = np.nonzero(classes != 127)
    xs, ys = transform @ (cols + 0.5, rows + 0.5)
    lon, lat = Transformer.from_crs(CRS(crs), CRS(crs).geodetic_crs, always_xy=True).transform(xs, ys)
    scale = np.asarray(Proj(CRS(crs)).get_factors(lon, lat).areal_scale)
    expected_ha = float(np.sum(0.09 / scale))
    # PROJ takes the scale by numerical differentiation (~1e-8 noise); the engine interpolates it every 64 pixels.
    assert sum(p.class_total_ha for p in parts) == pytest.approx(expected_ha, rel=1e-7)
    # 17-57 km west of 123°W the UTM scale is ~0.9996, so the grid understates true area by ~0.08%.
    assert expected_ha > WILLAMETTE_VALID_PX * 0.09 * 1.0007
    # The margin beyond the raster is outside_ha: a 90 m frame around 39.75 km x 56.67 km, on the ellipsoid.
    frame_grid_ha = ((39_750 + 180) * (56_670 + 180) - 39_750 * 56_670) / 10_000
    assert sum(p.outside_ha for p in parts) == pytest.approx(frame_grid_ha / 0.9992, rel=1e-3)


def test_willamette_transitions_match_a_pixel_crosstab(tmp_path):
    """Current → future over a whole-raster parcel, against numpy's own crosstab; then epoch 2 on a 10 m grid."""
    current = shared_path("data", "lulc_current_willamette.tif")
    future = shared_path("data", "lulc_future_willamette.tif")
    with rasterio.open(current) as c, rasterio.open(future) as f:
        future_array = f.read(1)
        a, b = c.read(1).astype(np.int64), future_array.astype(np.int64)
        whole = [box(*c.bounds)]
        crs, profile = c.crs.to_wkt(), f.profile
    valid = (a != 127) & (b != 0)
    pairs, counts = np.unique(a[valid] * 1000 + b[valid], return_counts=True)
    crosstab = {(int(p // 1000), int(p % 1000)): int(n) for p, n in zip(pairs, counts, strict=True)}
    [result] = zonal_transitions(current, future, whole, crs)
    assert set(result.transition_ha) == set(crosstab)
    grid_ha = {k: v / 0.09 for k, v in result.transition_ha.items()}  # back to pixels, within the areal scale
    for key, n in crosstab.items():
        assert grid_ha[key] == pytest.approx(n / 0.99924, rel=2e-4)
    assert sum(result.epoch_1.pixel_count_by_class.values()) == pytest.approx(WILLAMETTE_VALID_PX, rel=1e-12)
    assert result.epoch_2.nodata_pixel_count == pytest.approx(WILLAMETTE_NODATA_PX, rel=1e-12)
    changed = sum(v for (x, y), v in crosstab.items() if x != y)
    assert changed > 100_000  # the scenario ages conifer classes one step

    # The future raster at 10 m (each 30 m pixel as 3 x 3): nearest neighbour brings back the same classes.
    fine = np.repeat(np.repeat(future_array, 3, axis=0), 3, axis=1)
    t = profile["transform"]
    profile.update(width=fine.shape[1], height=fine.shape[0], transform=t * t.scale(1 / 3), blockxsize=512,
                   blockysize=512, tiled=True)
    fine_path = tmp_path / "future_10m.tif"
    with rasterio.open(fine_path, "w", **profile) as dst:
        dst.write(fine, 1)
    [resampled] = zonal_transitions(current, fine_path, whole, crs)
    assert resampled.transition_ha == pytest.approx(result.transition_ha, rel=1e-12)
