"""Parcels drawn as inline SVG: longitude/latitude projected to page pixels, filled by a value. Pure: no Django.

The projection is equirectangular about the features' mean latitude (x = lon × cos(lat0), y = −lat), which at the
scale of a county (tens of kilometres) distorts shapes by well under 1 %: good enough for a picture, never used for
areas (those are geodesic, geo.area).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

NO_VALUE_FILL = "#d9d9d9"
# Sequential greens (light to dark), one per class of the legend.
GREENS = ("#edf8e9", "#c7e9c0", "#a1d99b", "#74c476", "#41ab5d", "#238b45", "#005a32")


@dataclass(frozen=True, slots=True)
class MapFeature:
    """One shape to draw: a GeoJSON Polygon or MultiPolygon in WGS84 lon/lat, its value (None: no value),
    a link and a tooltip."""

    geometry: dict
    value: float | None = None
    href: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True)
class MapShape:
    path_d: str
    fill: str
    href: str
    title: str


@dataclass(frozen=True, slots=True)
class LegendStep:
    fill: str
    lower: float
    upper: float | None  # None: open-ended top class


@dataclass(frozen=True, slots=True)
class SvgMap:
    width_px: int
    height_px: int
    shapes: tuple[MapShape, ...]
    legend: tuple[LegendStep, ...]


def _rings(geometry: dict) -> list[list[list[float]]]:
    if geometry.get("type") == "Polygon":
        return list(geometry["coordinates"])
    if geometry.get("type") == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def legend_steps(values: Sequence[float], *, count: int = 5) -> tuple[LegendStep, ...]:
    """`count` classes with round breaks (1, 2 or 5 × 10^k) spanning 0 to the largest value; the top class is
    open-ended. Empty when there are no values."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ()
    top = max(max(finite), 1e-9)
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    fills = GREENS[1:count + 1] if count <= len(GREENS) - 1 else GREENS
    steps = []
    for i in range(count):
        lower = i * step
        steps.append(LegendStep(fills[min(i, len(fills) - 1)], lower, None if i == count - 1 else lower + step))
    return tuple(steps)


def _fill(value: float | None, legend: tuple[LegendStep, ...]) -> str:
    if value is None or not legend:
        return NO_VALUE_FILL
    for step in legend:
        if step.upper is None or value < step.upper:
            return step.fill
    return legend[-1].fill


def svg_map(features: Sequence[MapFeature], *, width_px: int = 720, margin_px: int = 4,
            legend: tuple[LegendStep, ...] | None = None) -> SvgMap:
    """Project `features` into a box at most `width_px` wide and tall (aspect kept) and colour them by value
    with `legend` (default: `legend_steps` over the values). Coordinates are rounded to 0.1 px."""
    if legend is None:
        legend = legend_steps([f.value for f in features if f.value is not None])
    points = [pt for f in features for ring in _rings(f.geometry) for pt in ring]
    if not points:
        return SvgMap(width_px, width_px // 2, (), legend)
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    scale_x = math.cos(math.radians((min(lats) + max(lats)) / 2))
    x0, x1 = min(lons) * scale_x, max(lons) * scale_x
    y0, y1 = -max(lats), -min(lats)
    inner_px = width_px - 2 * margin_px
    # Fit the width, unless that makes the map taller than it is wide; then fit the height.
    px_per_unit = min(inner_px / max(x1 - x0, 1e-12), inner_px / max(y1 - y0, 1e-12))
    width_px = round((x1 - x0) * px_per_unit) + 2 * margin_px
    height_px = round((y1 - y0) * px_per_unit) + 2 * margin_px

    def project(lon: float, lat: float) -> str:
        x = (lon * scale_x - x0) * px_per_unit + margin_px
        y = (-lat - y0) * px_per_unit + margin_px
        return f"{x:.1f},{y:.1f}"

    shapes = []
    for feature in features:
        parts = []
        for ring in _rings(feature.geometry):
            if len(ring) >= 3:
                parts.append("M" + "L".join(project(lon, lat) for lon, lat, *_ in ring[:-1]) + "Z")
        shapes.append(MapShape("".join(parts), _fill(feature.value, legend), feature.href, feature.title))
    return SvgMap(width_px, height_px, tuple(shapes), legend)
