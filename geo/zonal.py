"""The zonal engine: hectares of each land-cover class inside each parcel, exact to the last partial pixel.

Pure: NumPy arrays, ``affine.Affine`` transforms, shapely 2 geometries and pyproj CRSs in, frozen dataclasses out.
No Django, no settings, no models, and no file is opened here. `class_areas` and `class_transitions` take class
arrays already in memory. A larger job is planned first (`zonal_job`: the grid, the parcels in pixel space and the
strips of rows to read), then each strip's pixels go through `strip_histograms`, and `job_class_areas` or
`job_transitions` fold the strips' histograms into results. `geo.zonal_files` is the thin file layer that opens
rasters, reads the strips by windows and runs them in worker processes.

How a pixel counts
    By the fraction of its area that lies inside the parcel (its *coverage fraction*, as exactextract defines it),
    never by its centre alone. The fraction is computed exactly (to float rounding) by integrating the parcel's
    winding number over each cell (Green's theorem, the signed-area accumulation that exact font rasterisers use):
    every polygon edge is cut where it crosses a grid line; each piece, lying inside one cell, adds
    ``dy * (1 - mean x offset in the cell)`` to that cell and the rest of ``dy`` to the next cell on the right; a
    running sum along each row then gives every cell's coverage. So parcels that share an edge share every edge
    pixel between them, and the results of parcels that tile a region add up to the region's result.

How a pixel's area counts (hectares on the ellipsoid, never in degrees)
    Geographic raster CRS (EPSG:4326, 4490 ...): each row's cell area is the exact ellipsoidal area between the
    row's two parallels times its longitude width / 360 (`geographic_cell_area_ha`).
    Projected raster CRS: the grid cell area from the transform (in the CRS's linear unit, converted to metres)
    divided by the projection's areal scale factor (PROJ's ``proj_factors``), evaluated on grid lines every
    64 pixels and interpolated bilinearly to the centre of each 8 x 8 pixel block. Why correct at all: a UTM
    grid understates true area by 0.08 % on its central meridian (scale 0.9996) and overstates it by up to
    ~0.2 % at its zone edge near the equator, a Gauss-Krüger 6-degree zone likewise, and the 0.1 % budget
    between the parcel's geodesic area and its class hectares would not hold. Scaling each parcel's total to
    its geodesic area instead would break additivity (each parcel would get its own factor); dividing every
    pixel by the local scale puts each pixel on the ellipsoid and, being a fixed weight per pixel, keeps
    tiling exact. On the rasters tested a pixel's area is within ~1e-5 of its point value, a parcel's within
    ~1e-7.

Geometries are reprojected (vertex by vertex, edges stay straight in the raster CRS) to the raster's CRS; the
raster is never resampled here (the file layer brings a second epoch on another grid onto the first raster's grid
by nearest neighbour before its pixels reach this module: categorical values must not be blended).

Reproducible to the last bit: a job's strips depend on the raster alone (never on the number of workers), and
`job_class_areas` sums the strips' histograms in strip order, whoever computed them and in whatever order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Proj, Transformer
from shapely.geometry.base import BaseGeometry

from geo.area import M2_PER_HA, geodesic_area_ha
from geo.errors import ZonalError

__all__ = [
    "ClassAreas",
    "ClassTransitions",
    "Strip",
    "ZonalError",
    "ZonalJob",
    "check_class_dtype",
    "check_north_up",
    "class_areas",
    "class_transitions",
    "coverage_fractions",
    "geographic_cell_area_ha",
    "job_class_areas",
    "job_transitions",
    "strip_histograms",
    "zonal_job",
]

# Projected CRS: the areal scale factor is evaluated on grid lines every AREA_BLOCK pixels, interpolated
# bilinearly to the centre of each CELL_BLOCK x CELL_BLOCK block and held constant within it.
AREA_BLOCK = 64
CELL_BLOCK = 8
# Interleaved copies of each histogram (see _histogram).
LANES = 4
# Coverage within this of 0 or 1 is float rounding, snapped to 0 or 1.
SNAP = 1e-12
# A class whose coverage-weighted pixel count is below this is float noise from exterior cells (about 1e-16 per
# cell), not land: it is dropped. 1e-6 of a 10 m pixel is 1e-4 m².
NOISE_PIXELS = 1e-6
# Largest float64 work array per (parcel, chunk): bounds memory per worker thread (8 MiB each).
CHUNK_CELLS = 1 << 20
# Parcels whose edges are cut into cell pieces in one go (bounds the memory of that step).
DEPOSIT_BATCH = 256
# Target size of one read (a strip of whole block rows), in pixels.
STRIP_CELLS = 16 << 20

WGS84_LONLAT = CRS.from_epsg(4326)


@dataclass(frozen=True, slots=True)
class ClassAreas:
    """What one parcel contains, in ellipsoidal hectares.

    ``area_ha_by_class``: class code -> hectares of valid pixels of that class inside the parcel, each pixel
    weighted by its coverage fraction. ``nodata_ha``: hectares of the parcel over nodata pixels.
    ``outside_ha``: hectares of the parcel outside the raster's extent. ``geodesic_area_ha``: the parcel's own
    area on the WGS84 ellipsoid (`geo.area.geodesic_area_ha`). ``pixel_count_by_class`` and
    ``nodata_pixel_count`` are the same sums in coverage-weighted pixels (what exactextract's ``count`` and
    ``frac`` give), useful for checks. Classes are sorted by code; a class with under 1e-6 pixel is omitted.
    """

    area_ha_by_class: dict[int, float]
    nodata_ha: float
    outside_ha: float
    geodesic_area_ha: float
    pixel_count_by_class: dict[int, float]
    nodata_pixel_count: float

    @property
    def class_total_ha(self) -> float:
        return math.fsum(self.area_ha_by_class.values())

    @property
    def total_ha(self) -> float:
        """Class hectares + nodata + outside: equals ``geodesic_area_ha`` to about 1e-4 relative or better."""
        return self.class_total_ha + self.nodata_ha + self.outside_ha


@dataclass(frozen=True, slots=True)
class ClassTransitions:
    """One parcel over two epochs, in ellipsoidal hectares.

    ``transition_ha``: (class in epoch 1, class in epoch 2) -> hectares, over pixels valid in both epochs
    (unchanged land appears as (a, a)). ``epoch_1`` and ``epoch_2`` are each epoch's own `ClassAreas` on the
    first raster's grid; a pixel that is nodata in one epoch counts in that epoch's ``nodata_ha`` and in no
    transition.
    """

    epoch_1: ClassAreas
    epoch_2: ClassAreas
    transition_ha: dict[tuple[int, int], float]


# ---------------------------------------------------------------------------------------------------------------
# Cell areas


def _zone_area_m2(lat_deg: np.ndarray, semi_major_m: float, flattening: float) -> np.ndarray:
    """Area of the ellipsoid between the equator and latitude `lat_deg`, all the way round (360°), in m².

    Integrating the ellipsoid's area element dA = b² cosφ / (1 - e² sin²φ)² dφ dλ from 0 to φ gives
    2π b² [ sinφ / (2 (1 - e² sin²φ)) + atanh(e sinφ) / (2e) ] (equivalently 2π R_q² sin β with β the authalic
    latitude). At φ = 90° it is half the ellipsoid's surface, πa² + (πb²/2e) ln((1+e)/(1-e)).
    """
    b = semi_major_m * (1.0 - flattening)
    e2 = flattening * (2.0 - flattening)
    e = math.sqrt(e2)
    s = np.sin(np.radians(lat_deg))
    return 2.0 * math.pi * b * b * (s / (2.0 * (1.0 - e2 * s * s)) + np.arctanh(e * s) / (2.0 * e))


def geographic_cell_area_ha(transform: Affine, height: int, crs: CRS | str) -> np.ndarray:
    """Ellipsoidal area in hectares of one cell in each row of a north-up geographic (degree) raster.

    Returns shape ``(height,)`` float64: row r's cells span latitudes ``f + r*e`` to ``f + (r+1)*e`` and
    ``|a|`` degrees of longitude, so each has area |zone(φ1) - zone(φ2)| × |a| / 360 on the CRS's ellipsoid.
    """
    crs = _as_crs(crs)
    ellipsoid = crs.ellipsoid
    flattening = 1.0 / ellipsoid.inverse_flattening if ellipsoid.inverse_flattening else 0.0
    edges = transform.f + transform.e * np.arange(height + 1, dtype=np.float64)
    if np.abs(edges).max() > 90.0 + 1e-9:
        raise ZonalError(f"geographic raster rows reach latitude {np.abs(edges).max():.6f}°, beyond ±90°")
    if flattening == 0.0:
        zone = 2.0 * math.pi * ellipsoid.semi_major_metre**2 * np.sin(np.radians(np.clip(edges, -90, 90)))
    else:
        zone = _zone_area_m2(np.clip(edges, -90.0, 90.0), ellipsoid.semi_major_metre, flattening)
    return np.abs(np.diff(zone)) * (abs(transform.a) / 360.0) / M2_PER_HA


def _node_positions(size: int) -> np.ndarray:
    """Grid lines every AREA_BLOCK pixels from 0 to `size` inclusive (the last block may be shorter)."""
    return np.append(np.arange(0, size, AREA_BLOCK), size).astype(np.float64)


def _projected_node_cell_area_ha(transform: Affine, node_rows: np.ndarray, node_cols: np.ndarray,
                                 crs: CRS) -> np.ndarray:
    """Ellipsoidal hectares of a cell at each node (grid area / PROJ's areal scale there): (rows, cols) float64."""
    unit_m = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    grid_cell_m2 = abs(transform.a * transform.e) * unit_m * unit_m
    cols, rows = np.meshgrid(node_cols, node_rows)
    xs, ys = transform @ (cols.ravel(), rows.ravel())
    to_lonlat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_lonlat.transform(np.asarray(xs), np.asarray(ys))
    areal_scale = np.asarray(Proj(crs).get_factors(lon, lat).areal_scale, dtype=np.float64)
    if not np.all(np.isfinite(areal_scale) & (areal_scale > 0)):
        raise ZonalError(f"the projection {crs.name!r} has no finite areal scale over part of the raster")
    return (grid_cell_m2 / areal_scale / M2_PER_HA).reshape(len(node_rows), len(node_cols))


def _interpolation(positions: np.ndarray, centres: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For pixel positions `centres` (clipped to [0, size]): the node interval index k and the fraction t in it."""
    centres = np.minimum(centres, size)
    k = np.minimum((centres // AREA_BLOCK).astype(np.int64), len(positions) - 2)
    t = (centres - positions[k]) / (positions[k + 1] - positions[k])
    return k, t


@dataclass(frozen=True)
class _Grid:
    """A raster's grid and the ellipsoidal area of its cells.

    Geographic: ``row_cell_ha`` (height,) holds each row's exact cell area. Projected: ``node_cell_ha`` holds
    the cell area at grid lines every AREA_BLOCK pixels, interpolated bilinearly to the centre of each 8 x 8
    pixel block. The areal scale is smooth: on the NRCan 30 m Lambert conic grid a pixel's area is then within
    ~1e-5 of its own point value (a constant per 64-pixel block would be ~1e-4 off), and parcel totals within
    ~1e-7.
    """

    transform: Affine
    crs: CRS
    height: int
    width: int
    row_cell_ha: np.ndarray | None = None
    node_rows: np.ndarray | None = None
    node_cols: np.ndarray | None = None
    node_cell_ha: np.ndarray | None = None

    @classmethod
    def build(cls, transform: Affine, crs, height: int, width: int) -> _Grid:
        crs = _as_crs(crs)
        check_north_up(transform)
        if crs.is_geographic:
            unit = crs.axis_info[0].unit_name if crs.axis_info else "degree"
            if unit not in ("degree", "degree (supplier to define representation)"):
                raise ZonalError(f"geographic raster CRS in {unit!r}, want degrees")
            return cls(transform, crs, height, width, row_cell_ha=geographic_cell_area_ha(transform, height, crs))
        if not crs.is_projected:
            raise ZonalError(f"raster CRS {crs.name!r} is neither geographic nor projected")
        node_rows, node_cols = _node_positions(height), _node_positions(width)
        node_ha = _projected_node_cell_area_ha(transform, node_rows, node_cols, crs)
        return cls(transform, crs, height, width, node_rows=node_rows, node_cols=node_cols, node_cell_ha=node_ha)

    def groups(self, row0: int, row1: int, col0: int, col1: int):
        """Cells of equal area in rows [row0, row1) x cols [col0, col1): (group row of each row (rows,), group
        column of each column (cols,), hectares of one cell in each group (group rows, group columns))."""
        if self.row_cell_ha is not None:
            return (np.arange(row1 - row0), np.zeros(col1 - col0, dtype=np.int64),
                    self.row_cell_ha[row0:row1, None])
        # Bilinear in the nodes at the centre of each CELL_BLOCK x CELL_BLOCK block, constant within it: a
        # function of the pixel alone, so tiling stays exact.
        b0, b1 = row0 // CELL_BLOCK, (row1 - 1) // CELL_BLOCK + 1
        c0, c1 = col0 // CELL_BLOCK, (col1 - 1) // CELL_BLOCK + 1
        k, t = _interpolation(self.node_rows, (np.arange(b0, b1) + 0.5) * CELL_BLOCK, self.height)
        kc, tc = _interpolation(self.node_cols, (np.arange(c0, c1) + 0.5) * CELL_BLOCK, self.width)
        nodes = self.node_cell_ha
        along_rows = nodes[k] * (1.0 - t)[:, None] + nodes[k + 1] * t[:, None]
        blocks = along_rows[:, kc] * (1.0 - tc) + along_rows[:, kc + 1] * tc
        return np.arange(row0, row1) // CELL_BLOCK - b0, np.arange(col0, col1) // CELL_BLOCK - c0, blocks

    def cell_ha(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """Cell areas in ha for rows [row0, row1) x cols [col0, col1), broadcastable to (rows, cols)."""
        group_row, group_col, group_ha = self.groups(row0, row1, col0, col1)
        if self.row_cell_ha is not None:
            return group_ha
        return group_ha[group_row[:, None], group_col[None, :]]


def check_north_up(transform: Affine) -> Affine:
    """`transform` when it maps pixels to a north-up grid (no rotation or shear, non-zero pixel size); else
    ZonalError."""
    if transform.b != 0 or transform.d != 0:
        raise ZonalError(f"rotated or sheared raster transform (b={transform.b}, d={transform.d}), want north-up")
    if transform.a == 0 or transform.e == 0:
        raise ZonalError("raster transform has zero pixel size")
    return transform


def _as_crs(crs) -> CRS:
    if crs is None:
        raise ZonalError("a CRS is required (a pyproj CRS or a string such as 'EPSG:4326'), got None")
    if isinstance(crs, CRS):
        return crs
    if hasattr(crs, "to_wkt"):  # rasterio.crs.CRS
        return CRS.from_wkt(crs.to_wkt())
    return CRS.from_user_input(crs)


# ---------------------------------------------------------------------------------------------------------------
# Coverage fractions


@dataclass(frozen=True)
class _Deposits:
    """Signed-area deposits of one parcel: running sums of ``value`` along each row from column ``col0``
    give the coverage fraction. Sorted by row, then column; ``col`` is relative to ``col0``, in [0, width)."""

    row: np.ndarray  # int64
    col: np.ndarray  # int64
    value: np.ndarray  # float64
    col0: int
    width: int


def _deposits(parcel_px: BaseGeometry, row0: int, row1: int, col0: int, col1: int) -> _Deposits:
    """Deposits for cells in rows [row0, row1) x cols [col0, col1) of a (multi)polygon in pixel coordinates.

    Pixel coordinates: x = column, y = row, cell (i, j) spans [j, j+1] x [i, i+1]. Exteriors and holes may run
    either way round; rings are oriented here so that the interior has winding number +1 and holes 0.
    """
    return _deposits_many([parcel_px], np.array([[row0, row1, col0, col1]]))[0]


def _split_at_grid_lines(x0, y0, x1, y1, *, vertical: bool):
    """Cut segments (x0, y0)-(x1, y1) at every integer x (vertical grid lines) or integer y: the parts in order
    along each segment, as (xa, ya, xb, yb, index of the segment each part came from). A cut point gets the
    grid coordinate exactly and the other coordinate by interpolation."""
    a0, a1 = (x0, x1) if vertical else (y0, y1)
    n = len(a0)
    if n == 0:
        return x0, y0, x1, y1, np.zeros(0, dtype=np.int64)
    lo = np.floor(np.minimum(a0, a1))
    count = np.maximum(np.ceil(np.maximum(a0, a1)) - lo - 1.0, 0.0).astype(np.int64)
    segment = np.repeat(np.arange(n), count)
    rank = np.arange(segment.size) - np.repeat(np.cumsum(count) - count, count)
    forward = (a1 > a0)[segment]
    k = np.where(forward, lo[segment] + 1.0 + rank, lo[segment] + count[segment] - rank)
    t = (k - a0[segment]) / (a1 - a0)[segment]
    if vertical:
        cut_x, cut_y = k, y0[segment] + t * (y1 - y0)[segment]
    else:
        cut_x, cut_y = x0[segment] + t * (x1 - x0)[segment], k
    # Points of segment i: its start, its cuts in order, its end, at first[i] .. first[i] + count[i] + 1.
    first = np.cumsum(count + 2) - (count + 2)
    px = np.empty(2 * n + segment.size)
    py = np.empty_like(px)
    px[first], py[first] = x0, y0
    px[first + count + 1], py[first + count + 1] = x1, y1
    cut_at = first[segment] + 1 + rank
    px[cut_at], py[cut_at] = cut_x, cut_y
    starts = np.ones(len(px) - 1, dtype=bool)
    starts[(first + count + 1)[:-1]] = False  # an end point starts no part
    return px[:-1][starts], py[:-1][starts], px[1:][starts], py[1:][starts], np.repeat(np.arange(n), count + 1)


def _deposits_many(geometries_px: Sequence[BaseGeometry], windows: np.ndarray) -> list[_Deposits]:
    """`_deposits` for many geometries at once (one set of array operations, not one per parcel).

    ``windows``: (n, 4) int array of [row0, row1, col0, col1] per geometry.
    """
    # Exteriors clockwise and holes counter-clockwise, judged in (x, y) = (col, row) as if y pointed up: then the
    # edge on the left of any interior point runs towards increasing row (dy > 0), so the running sum of dy
    # from the left is +1 inside, 0 outside and in holes.
    oriented = shapely.orient_polygons(np.asarray(geometries_px, dtype=object), exterior_cw=True)
    parts, part_owner = shapely.get_parts(oriented, return_index=True)
    polygons = shapely.get_type_id(parts) == 3
    parts, part_owner = parts[polygons], part_owner[polygons]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    coord_owner = part_owner[ring_part[ring_index]]
    same_ring = ring_index[1:] == ring_index[:-1]
    x0, y0 = coords[:-1, 0][same_ring], coords[:-1, 1][same_ring]
    x1, y1 = coords[1:, 0][same_ring], coords[1:, 1][same_ring]
    owner = coord_owner[:-1][same_ring]
    row0, row1, col1 = windows[owner, 0], windows[owner, 1], windows[owner, 3]
    # An edge only changes the winding number of the rows it spans, and only of cells right of it.
    near = (np.maximum(y0, y1) > row0) & (np.minimum(y0, y1) < row1) & (np.minimum(x0, x1) < col1) & (y0 != y1)
    x0, y0, x1, y1, owner = x0[near], y0[near], x1[near], y1[near], owner[near]
    # Cut every edge where it crosses a vertical grid line, then every part where it crosses a horizontal one:
    # each piece then lies inside one cell, and the pieces come out in order along each edge without a sort.
    xa, ya, xb, yb, parent = _split_at_grid_lines(x0, y0, x1, y1, vertical=True)
    xa, ya, xb, yb, parent_2 = _split_at_grid_lines(xa, ya, xb, yb, vertical=False)
    piece_owner = owner[parent[parent_2]]
    dyp = yb - ya
    keep = dyp != 0.0  # horizontal pieces change no winding number
    xa, xb, ya, yb, dyp, piece_owner = xa[keep], xb[keep], ya[keep], yb[keep], dyp[keep], piece_owner[keep]
    xm = 0.5 * (xa + xb)
    i = np.floor(0.5 * (ya + yb)).astype(np.int64)
    j = np.floor(xm).astype(np.int64)
    # Within its cell the piece leaves (j + 1 - mean x) of the cell's width on its right, so it adds
    # dy * (j + 1 - mean x) to cell (i, j); every cell further right gets the whole dy, deposited at j + 1.
    own = dyp * ((j + 1) - xm)
    row = np.concatenate([i, i])
    col = np.concatenate([j, j + 1])
    value = np.concatenate([own, dyp - own])
    who = np.concatenate([piece_owner, piece_owner])
    inside = (row >= windows[who, 0]) & (row < windows[who, 1]) & (col < windows[who, 3])
    row, col, value, who = row[inside], col[inside], value[inside], who[inside]
    # Deposits left of the window still change the winding number of every cell in the window.
    col = np.maximum(col, windows[who, 2]) - windows[who, 2]
    row_span, col_span = int(row.max(initial=0)) + 1, int(col.max(initial=0)) + 1
    order = np.argsort((who * row_span + row) * col_span + col, kind="stable")
    row, col, value, who = row[order], col[order], value[order], who[order]
    bounds = np.searchsorted(who, np.arange(len(windows) + 1))
    return [_Deposits(row[lo:hi], col[lo:hi], value[lo:hi], int(w[2]), int(w[3] - w[2]))
            for lo, hi, w in zip(bounds[:-1], bounds[1:], windows, strict=True)]


def _coverage(deposits: _Deposits, row0: int, row1: int) -> np.ndarray | float:
    """Coverage fractions for rows [row0, row1) of the deposits' window: shape (rows, width), float64, or one
    float when every cell has the same coverage.

    The coverage is constant between deposits along a row, so the running sums are taken over the few
    deposits only (one per boundary crossing) and then spread over their runs with one ``np.repeat``:
    a row-wise ``np.cumsum`` over every pixel would cost several times more.
    """
    lo, hi = np.searchsorted(deposits.row, [row0, row1])
    rows, width = row1 - row0, deposits.width
    position = (deposits.row[lo:hi] - row0) * width + deposits.col[lo:hi]
    value = deposits.value[lo:hi]
    # A zero deposit at the start of every row, so that each row's running sum starts afresh.
    row_start = np.arange(rows, dtype=np.int64) * width
    start_index = np.searchsorted(position, row_start, side="left") + np.arange(rows)  # where they land
    merged = np.ones(len(position) + rows, dtype=bool)
    merged[start_index] = False
    position_all = np.empty(len(merged), dtype=np.int64)
    position_all[start_index], position_all[merged] = row_start, position
    value_all = np.zeros(len(merged))
    value_all[merged] = value
    position = position_all
    running = np.cumsum(value_all)
    per_row = np.diff(np.append(start_index, len(position)))
    running -= np.repeat(running[start_index], per_row)
    # Rounding leaves ~1e-16 where the winding number is 0 or 1; make those exact, so that no class appears
    # with a 1e-16 share and parcels that tile a region share interior pixels exactly.
    running[np.abs(running) < SNAP] = 0.0
    running[np.abs(running - 1.0) < SNAP] = 1.0
    lengths = np.diff(np.append(position, rows * width))
    used = running[lengths > 0]
    if used.size and np.all(used == used[0]):
        return float(used[0])  # one value for the whole chunk (a block wholly inside, or wholly outside)
    return np.repeat(running, lengths).reshape(rows, width)


def coverage_fractions(parcel_px: BaseGeometry, height: int, width: int) -> np.ndarray:
    """Fraction of each cell of a ``(height, width)`` grid covered by a (multi)polygon in pixel coordinates.

    Pixel coordinates: x = column, y = row, cell (i, j) is the square [j, j+1] x [i, i+1]. Returns float64 of shape
    ``(height, width)`` with values in [0, 1] (up to float rounding, about 1e-15). Exact: a cell cut in half by
    an edge gets 0.5. Useful for tests and small grids; the zonal functions never build the whole array.
    """
    deposits = _deposits(parcel_px, 0, height, 0, width)
    cover = _coverage(deposits, 0, height)
    return np.full((height, width), cover) if isinstance(cover, float) else cover


# ---------------------------------------------------------------------------------------------------------------
# Histograms


def check_class_dtype(dtype, what: str) -> np.dtype:
    """`dtype` as a NumPy dtype when it holds integer class codes that fit in int32 (int8 to int32, uint8,
    uint16, bool); else ZonalError naming `what`."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iub" or dtype.itemsize > 4 or (dtype.kind == "u" and dtype.itemsize == 4):
        raise ZonalError(f"{what} must hold integer class codes that fit in int32, got dtype {dtype}")
    return dtype


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes for class values: (codes (rows*cols,) intp-compatible, labels (n,) int64)."""
    if values.dtype == np.uint8 or values.dtype == np.bool_:
        return values.reshape(-1).view(np.uint8), np.arange(256, dtype=np.int64)
    if values.dtype == np.int8:
        return values.reshape(-1).view(np.uint8), np.concatenate([np.arange(128), np.arange(-128, 0)]).astype(np.int64)
    labels, codes = np.unique(values.reshape(-1), return_inverse=True)
    return codes.reshape(-1), labels.astype(np.int64)


@functools.lru_cache(maxsize=4)
def _row_offsets(rows: int, cols: int, n: int, lanes: int) -> np.ndarray:
    """Histogram offsets (row * n + lane * rows * n) of a chunk whose groups are its rows; the chunks of a large
    parcel share one shape, so this is built once. Read-only."""
    offsets = np.add((np.arange(rows) * n)[:, None], ((np.arange(cols) % lanes) * (rows * n))[None, :],
                     dtype=np.intp)
    offsets.setflags(write=False)
    return offsets


def _histogram(cover: np.ndarray, groups, values: np.ndarray):
    """(labels, ha, pixels) of one chunk; ``values`` (rows, cols) integer, ``cover`` float64 of the same shape,
    ``groups`` as `_Grid.groups` gives them for the chunk."""
    codes, labels = _codes(values)
    rows, cols = values.shape
    group_row, group_col, group_ha = groups
    uniform = isinstance(cover, float)
    if uniform and cover == 0.0:
        return labels[:0], np.zeros(0), np.zeros(0)
    row_groups_only = group_ha.shape == (rows, 1)  # one group per row: offsets depend on the shape alone
    if codes.dtype == np.uint8 and (row_groups_only or uniform):
        # One class over the whole chunk (open water, a nodata margin): no histogram needed.
        low = int(codes.min())
        if low == int(codes.max()):
            if row_groups_only:
                per_row = np.full(rows, float(cols) * cover) if uniform else cover.sum(axis=1)
                pixels_1, hectares_1 = per_row.sum(), float(group_ha[:, 0] @ per_row)
            else:
                per_group = np.outer(np.bincount(group_row), np.bincount(group_col)) * cover
                pixels_1, hectares_1 = per_group.sum(), float((group_ha * per_group).sum())
            return labels[[low]], np.array([hectares_1]), np.array([pixels_1])
    if codes.dtype == np.uint8 and not (row_groups_only and group_ha.size * 256 * LANES <= values.size // 2):
        n = int(codes.max()) + 1
    else:
        n = len(labels)
    bins = group_ha.size * n
    lanes = next((k for k in (LANES, 2, 1) if bins * k <= max(4096, values.size // 2)), 0)
    if lanes:
        # Histogram each group of equal-area cells (index group * n + code) with the coverage as weight, then
        # weight the groups by their cell area: one pass over the pixels instead of three. Neighbouring pixels
        # go to LANES separate copies of the histogram: runs of one class would otherwise make every addition
        # wait for the previous one to the same bin (2.5x slower on mostly uniform land cover).
        if row_groups_only:
            index = np.add(_row_offsets(rows, cols, n, lanes), codes.reshape(rows, cols), dtype=np.intp)
        else:
            index = np.add((group_row * (group_ha.shape[1] * n))[:, None],
                           (group_col * n + (np.arange(cols) % lanes) * bins)[None, :], dtype=np.intp)
            index += codes.reshape(rows, cols)
        if uniform:  # counting is cheaper than adding weights
            by_group = np.bincount(index.reshape(-1), minlength=lanes * bins) * cover
        else:
            by_group = np.bincount(index.reshape(-1), weights=cover.reshape(-1), minlength=lanes * bins)
        by_group = by_group.reshape(lanes, group_ha.size, n).sum(axis=0)
        pixels = by_group.sum(axis=0)
        hectares = group_ha.reshape(-1) @ by_group
    else:
        if uniform:
            cover = np.full(values.shape, cover)
        if group_ha.shape[1] == 1:
            cell_ha = group_ha[group_row]
        else:
            cell_ha = group_ha[group_row[:, None], group_col[None, :]]
        codes = codes.astype(np.intp)
        pixels = np.bincount(codes, weights=cover.reshape(-1), minlength=n)
        hectares = np.bincount(codes, weights=np.multiply(cover, cell_ha).reshape(-1), minlength=n)
    present = np.flatnonzero(pixels)
    return labels[present], hectares[present], pixels[present]


def _joint_histogram(cover, cell_ha, values_1, values_2):
    """(keys (n, 2) int64, ha, pixels) of one chunk over two co-registered class arrays."""
    if isinstance(cover, float):
        cover = np.full(values_1.shape, cover)
    codes_1, labels_1 = _codes(values_1)
    codes_2, labels_2 = _codes(values_2)
    n2 = len(labels_2)
    joint = codes_1.astype(np.int64) * n2 + codes_2
    n = len(labels_1) * n2
    if n > 4 * joint.size:
        uniq, joint = np.unique(joint, return_inverse=True)
        n = len(uniq)
    else:
        uniq = None
    pixels = np.bincount(joint, weights=cover.reshape(-1), minlength=n)
    hectares = np.bincount(joint, weights=np.multiply(cover, cell_ha).reshape(-1), minlength=n)
    present = np.flatnonzero(pixels)
    key = present if uniq is None else uniq[present]
    keys = np.column_stack([labels_1[key // n2], labels_2[key % n2]])
    return keys, hectares[present], pixels[present]


# ---------------------------------------------------------------------------------------------------------------
# Jobs: plan the strips, histogram each strip's pixels, fold the histograms


@dataclass(frozen=True, slots=True)
class _Parcel:
    """A geometry in pixel coordinates and the window of the grid it reaches (rows [row0, row1), cols [col0,
    col1), clipped to the grid)."""

    index: int
    geometry_px: BaseGeometry
    row0: int
    row1: int
    col0: int
    col1: int


@dataclass(frozen=True, slots=True)
class Strip:
    """One read of a job: rows [row0, row1) by columns [col0, col1) of the raster, in pixel offsets, and the
    indices (into the job's geometries, ascending) of the parcels with rows in it. Its pixels are the arrays of
    shape ``(row1 - row0, col1 - col0)`` that `strip_histograms` takes."""

    row0: int
    row1: int
    col0: int
    col1: int
    parcels: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.row1 - self.row0, self.col1 - self.col0


@dataclass(frozen=True, eq=False)
class ZonalJob:
    """A zonal job planned over one raster grid before any pixel is read (`zonal_job`).

    ``parcels``: one entry per geometry, None for a geometry that is empty or reaches no pixel. ``strips``: the
    reads, in row order; whole block rows of about STRIP_CELLS pixels and at least 8 strips when the raster
    allows, fixed by the raster alone. ``geodesic_area_ha`` and ``outside_ha``: per geometry, its area on the
    WGS84 ellipsoid and the part of it beyond the raster's extent. ``epochs``: 1 (class areas) or 2 (transitions
    between two co-registered class arrays). ``cell_count``: pixels in the parcels' windows, the work to do.
    """

    grid: _Grid
    parcels: tuple[_Parcel | None, ...]
    strips: tuple[Strip, ...]
    geodesic_area_ha: tuple[float, ...]
    outside_ha: tuple[float, ...]
    epochs: int

    @property
    def cell_count(self) -> int:
        return sum((p.row1 - p.row0) * (p.col1 - p.col0) for p in self.parcels if p is not None)


class _Accumulator:
    """Sums per class key, in the order chunks arrive (fixed by the strip order, so results are reproducible)."""

    __slots__ = ("hectares", "pixels")

    def __init__(self):
        self.hectares: dict = {}
        self.pixels: dict = {}

    def add(self, keys, hectares, pixels):
        for key, ha, px in zip(keys.tolist(), hectares.tolist(), pixels.tolist(), strict=True):
            key = tuple(key) if isinstance(key, list) else key
            self.hectares[key] = self.hectares.get(key, 0.0) + ha
            self.pixels[key] = self.pixels.get(key, 0.0) + px


def _to_pixel_space(transform: Affine, geometry: BaseGeometry) -> BaseGeometry:
    inverse = ~transform
    return shapely.transform(geometry, lambda xy: np.column_stack(inverse @ (xy[:, 0], xy[:, 1])))


def _prepare_parcels(grid: _Grid, geometries_raster_crs: Sequence[BaseGeometry]) -> list[_Parcel | None]:
    parcels: list[_Parcel | None] = []
    for index, geometry in enumerate(geometries_raster_crs):
        if geometry is None or geometry.is_empty:
            parcels.append(None)
            continue
        px = _to_pixel_space(grid.transform, geometry)
        minx, miny, maxx, maxy = px.bounds
        col0, col1 = max(0, math.floor(minx)), min(grid.width, math.ceil(maxx))
        row0, row1 = max(0, math.floor(miny)), min(grid.height, math.ceil(maxy))
        if col0 >= col1 or row0 >= row1:
            parcels.append(None)
            continue
        parcels.append(_Parcel(index, px, row0, row1, col0, col1))
    return parcels


def _strip_rows(grid: _Grid, block_rows: int) -> int:
    """Rows per strip: whole block rows, about STRIP_CELLS pixels, and at least 8 strips when the raster allows,
    so that several workers have work. It depends on the raster only, never on the number of workers, so that
    every run sums in the same order and gives the same numbers to the last bit."""
    block_rows = max(1, block_rows)
    rows = max(block_rows, (STRIP_CELLS // max(grid.width, 1)) // block_rows * block_rows)
    eighth = -(-grid.height // 8)
    if eighth < rows:
        rows = max(block_rows, -(-eighth // block_rows) * block_rows)
    return rows


def _plan_strips(grid: _Grid, parcels: Sequence[_Parcel | None], block_rows: int) -> tuple[Strip, ...]:
    """The strips that hold a parcel's rows, in row order; each reads the columns its parcels reach."""
    live = [p for p in parcels if p is not None]
    if not live:
        return ()
    rows = _strip_rows(grid, block_rows)
    by_strip: dict[int, list[_Parcel]] = {}
    for parcel in live:
        for s in range(parcel.row0 // rows, (parcel.row1 - 1) // rows + 1):
            by_strip.setdefault(s, []).append(parcel)
    return tuple(
        Strip(s * rows, min(grid.height, (s + 1) * rows), min(p.col0 for p in members),
              max(p.col1 for p in members), tuple(p.index for p in members))
        for s, members in sorted(by_strip.items()))


def zonal_job(transform: Affine, crs, height: int, width: int, geometries: Sequence[BaseGeometry | None],
              geometries_crs=None, *, block_rows: int, epochs: int = 1) -> ZonalJob:
    """Plan a zonal job over a ``(height, width)`` raster grid: check and reproject the geometries, put them
    in pixel space and cut the raster into strips. No pixel is read.

    ``transform``: the north-up ``Affine`` from pixel (col, row) to ``crs`` coordinates. ``crs``: the raster's
    CRS (pyproj CRS, rasterio CRS or "EPSG:xxxx"), projected or geographic. ``geometries``: shapely Polygons or
    MultiPolygons (None or empty give an all-zero result) in ``geometries_crs`` (longitude first for a
    geographic CRS), or in the raster's CRS when ``geometries_crs`` is None. ``block_rows``: rows per block of
    the stored raster (strips hold whole blocks; 1 or the height for arrays in memory). ``epochs``: 1 or 2.
    Raises `ZonalError` for an unusable grid or geometry.
    """
    if epochs not in (1, 2):
        raise ZonalError(f"epochs must be 1 or 2, got {epochs}")
    grid = _Grid.build(transform, crs, height, width)
    geometries = _check_geometries(geometries)
    source = grid.crs if geometries_crs is None else _as_crs(geometries_crs)
    in_raster_crs = _reproject(geometries, source, grid.crs)
    lonlat = _reproject(geometries, source, WGS84_LONLAT)
    geodesic, outside = _areas_outside(grid, in_raster_crs, lonlat)
    parcels = _prepare_parcels(grid, in_raster_crs)
    return ZonalJob(grid, tuple(parcels), _plan_strips(grid, parcels, block_rows), tuple(geodesic), tuple(outside),
                    epochs)


StripHistograms = list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]
"""What `strip_histograms` returns: (geometry index, class keys, hectares, coverage-weighted pixels) per chunk of
a parcel, in the order they are to be summed. Keys are class codes (1 epoch) or (code, code) rows (2 epochs)."""


def strip_histograms(job: ZonalJob, strip: Strip, arrays: Sequence[np.ndarray]) -> StripHistograms:
    """The histograms of every parcel of ``strip`` over the strip's pixels.

    ``arrays``: ``job.epochs`` class arrays, each of shape ``strip.shape`` (rows [row0, row1) by columns [col0,
    col1) of the raster) and an integer dtype (`check_class_dtype`); for two epochs, the second on the first's
    grid. Pure and independent of every other strip, so strips can be computed anywhere, in any order.
    """
    if len(arrays) != job.epochs:
        raise ZonalError(f"a {job.epochs}-epoch job takes {job.epochs} class array(s) per strip, got {len(arrays)}")
    for values in arrays:
        if np.shape(values) != strip.shape:
            raise ZonalError(f"strip rows {strip.row0}-{strip.row1}, columns {strip.col0}-{strip.col1} needs "
                             f"arrays of shape {strip.shape}, got {np.shape(values)}")
    parcels = [job.parcels[i] for i in strip.parcels]
    windows = np.array([[max(p.row0, strip.row0), min(p.row1, strip.row1), p.col0, p.col1] for p in parcels])
    out: StripHistograms = []
    for first in range(0, len(parcels), DEPOSIT_BATCH):
        batch = parcels[first:first + DEPOSIT_BATCH]
        batch_windows = windows[first:first + DEPOSIT_BATCH]
        batch_deposits = _deposits_many([p.geometry_px for p in batch], batch_windows)
        for parcel, deposits, window in zip(batch, batch_deposits, batch_windows.tolist(), strict=True):
            out.extend(_parcel_histograms(job.grid, parcel, deposits, window, arrays, strip.row0, strip.col0,
                                          job.epochs == 2))
    return out


def _parcel_histograms(grid, parcel, deposits, window, arrays, strip_row0, strip_col0, two_epochs):
    """Histograms of one parcel over its rows in a strip, in chunks of at most CHUNK_CELLS pixels."""
    out = []
    step = max(1, CHUNK_CELLS // (parcel.col1 - parcel.col0))
    columns = slice(parcel.col0 - strip_col0, parcel.col1 - strip_col0)
    for r0 in range(window[0], window[1], step):
        r1 = min(window[1], r0 + step)
        cover = _coverage(deposits, r0, r1)
        rows = slice(r0 - strip_row0, r1 - strip_row0)
        if two_epochs:
            cell_ha = grid.cell_ha(r0, r1, parcel.col0, parcel.col1)
            result = _joint_histogram(cover, cell_ha, arrays[0][rows, columns], arrays[1][rows, columns])
        else:
            result = _histogram(cover, grid.groups(r0, r1, parcel.col0, parcel.col1), arrays[0][rows, columns])
        out.append((parcel.index, *result))
    return out


def _accumulate(job: ZonalJob, histograms: Iterable[StripHistograms], epochs: int) -> dict[int, _Accumulator]:
    if job.epochs != epochs:
        wanted = "job_class_areas" if epochs == 1 else "job_transitions"
        raise ZonalError(f"{wanted} folds a {epochs}-epoch job, got a {job.epochs}-epoch one")
    accumulators = {p.index: _Accumulator() for p in job.parcels if p is not None}
    for strip_result in histograms:
        for index, keys, hectares, pixels in strip_result:
            accumulators[index].add(keys, hectares, pixels)
    return accumulators


def job_class_areas(job: ZonalJob, histograms: Iterable[StripHistograms], *, nodata) -> list[ClassAreas]:
    """Fold the strips' histograms, given in strip order (as `job.strips`), into one `ClassAreas` per geometry.

    ``nodata``: the class code of no data, or None. ``histograms`` may be a generator: each strip's result is
    added as it comes, so that memory holds one strip's result at a time.
    """
    acc = _accumulate(job, histograms, 1)
    return [_class_areas(acc.get(i), nodata, job.geodesic_area_ha[i], job.outside_ha[i])
            for i in range(len(job.parcels))]


def job_transitions(job: ZonalJob, histograms: Iterable[StripHistograms], *, nodata_1,
                    nodata_2) -> list[ClassTransitions]:
    """Fold a two-epoch job's strip histograms, in strip order, into one `ClassTransitions` per geometry."""
    acc = _accumulate(job, histograms, 2)
    return [_transitions(acc.get(i), nodata_1, nodata_2, job.geodesic_area_ha[i], job.outside_ha[i])
            for i in range(len(job.parcels))]


def _class_areas(acc: _Accumulator | None, nodata, geodesic_ha: float, outside_ha: float, pick=None) -> ClassAreas:
    """Fold an accumulator (keyed by class, or by (class, class) with ``pick`` 0 or 1) into ClassAreas."""
    hectares: dict[int, float] = {}
    pixels: dict[int, float] = {}
    if acc is not None:
        for key, ha in acc.hectares.items():
            cls = key if pick is None else key[pick]
            hectares[cls] = hectares.get(cls, 0.0) + ha
            pixels[cls] = pixels.get(cls, 0.0) + acc.pixels[key]
    nodata_ha = nodata_px = 0.0
    if nodata is not None and nodata in pixels:
        nodata_ha, nodata_px = hectares.pop(nodata), pixels.pop(nodata)
        if abs(nodata_px) < NOISE_PIXELS:
            nodata_ha = nodata_px = 0.0
    kept = sorted(c for c, px in pixels.items() if px >= NOISE_PIXELS)
    return ClassAreas(
        area_ha_by_class={int(c): hectares[c] for c in kept},
        nodata_ha=nodata_ha,
        outside_ha=outside_ha,
        geodesic_area_ha=geodesic_ha,
        pixel_count_by_class={int(c): pixels[c] for c in kept},
        nodata_pixel_count=nodata_px,
    )


def _transitions(acc, nodata_1, nodata_2, geodesic_ha, outside_ha) -> ClassTransitions:
    transition_ha: dict[tuple[int, int], float] = {}
    if acc is not None:
        for key in sorted(acc.hectares):
            a, b = key
            if a == nodata_1 or b == nodata_2 or acc.pixels[key] < NOISE_PIXELS:
                continue
            transition_ha[(int(a), int(b))] = acc.hectares[key]
    return ClassTransitions(
        epoch_1=_class_areas(acc, nodata_1, geodesic_ha, outside_ha, pick=0),
        epoch_2=_class_areas(acc, nodata_2, geodesic_ha, outside_ha, pick=1),
        transition_ha=transition_ha,
    )


def _check_geometries(geometries: Sequence[BaseGeometry]) -> np.ndarray:
    array = np.asarray(geometries, dtype=object)
    if array.ndim != 1:
        raise ZonalError(f"geometries must be a flat sequence, got an array of shape {array.shape}")
    for index, geometry in enumerate(array):
        if geometry is None or geometry.is_empty:
            continue
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise ZonalError(f"geometry {index} is a {geometry.geom_type}, want Polygon or MultiPolygon")
        if not geometry.is_valid:
            raise ZonalError(f"geometry {index} is invalid: {shapely.is_valid_reason(geometry)}")
    return array


def _reproject(geometries: np.ndarray, source: CRS, target: CRS) -> np.ndarray:
    if source == target:
        return geometries
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def apply(xy):
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometries, apply)


def _areas_outside(grid: _Grid, geometries_raster: np.ndarray, lonlat: np.ndarray) -> tuple[list, list]:
    """(geodesic ha, outside ha) of each geometry; ``outside`` is the geodesic area beyond the raster's extent.

    ``lonlat``: the same geometries in WGS84 longitude/latitude, transformed from the caller's CRS directly.
    """
    left, top = grid.transform @ (0, 0)
    right, bottom = grid.transform @ (grid.width, grid.height)
    extent = shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    geodesic, outside = [], []
    for geometry, geometry_lonlat in zip(geometries_raster, lonlat, strict=True):
        if geometry is None or geometry.is_empty:
            geodesic.append(0.0)
            outside.append(0.0)
            continue
        geodesic.append(geodesic_area_ha(geometry_lonlat))
        if extent.contains(geometry):
            outside.append(0.0)
        else:
            # The raster's sides are straight in its CRS (a parallel or meridian in a geographic one), not
            # geodesics: densify the outside part so that its geodesic area follows them.
            beyond = shapely.segmentize(shapely.difference(geometry, extent), 10 * max(abs(grid.transform.a),
                                                                                     abs(grid.transform.e)))
            beyond_lonlat = _reproject(np.array([beyond], dtype=object), grid.crs, WGS84_LONLAT)[0]
            outside.append(0.0 if beyond.is_empty else geodesic_area_ha(beyond_lonlat))
    return geodesic, outside


# ---------------------------------------------------------------------------------------------------------------
# Array-level API


def _strip_arrays(strip: Strip, *arrays: np.ndarray) -> list[np.ndarray]:
    return [a[strip.row0:strip.row1, strip.col0:strip.col1] for a in arrays]


def class_areas(classes: np.ndarray, transform: Affine, crs, parcel: BaseGeometry, *, nodata) -> ClassAreas:
    """Hectares of each class of ``classes`` inside ``parcel``, weighting every pixel by the fraction covered.

    ``classes``: shape ``(rows, cols)``, an integer dtype (int8 to int32, uint8, uint16), one class code per
    pixel. ``transform``: the north-up ``Affine`` from pixel (col, row) to ``crs`` coordinates. ``crs``: the
    raster's CRS (pyproj CRS, rasterio CRS or "EPSG:xxxx"), projected or geographic. ``parcel``: a shapely
    Polygon or MultiPolygon **in the raster's CRS**. ``nodata``: the code for no data, or None.

    Areas are ellipsoidal hectares (see the module docstring); ``outside_ha`` is the parcel's area beyond the
    grid's extent and ``geodesic_area_ha`` the parcel's own area on the WGS84 ellipsoid.
    """
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ZonalError(f"classes must be 2-D (rows, cols), got shape {classes.shape}")
    check_class_dtype(classes.dtype, "classes")
    job = zonal_job(transform, crs, *classes.shape, [parcel], block_rows=classes.shape[0])
    strips = (strip_histograms(job, s, _strip_arrays(s, classes)) for s in job.strips)
    return job_class_areas(job, strips, nodata=nodata)[0]


def class_transitions(classes_1: np.ndarray, classes_2: np.ndarray, transform: Affine, crs, parcel: BaseGeometry, *,
                      nodata_1, nodata_2) -> ClassTransitions:
    """Hectares going from each class in ``classes_1`` to each class in ``classes_2`` inside ``parcel``.

    Both arrays have the same shape ``(rows, cols)`` on the same grid (``transform``, ``crs``); integer dtypes.
    ``parcel`` is in the raster's CRS. Pixels count by coverage fraction; areas are ellipsoidal hectares.
    """
    classes_1, classes_2 = np.asarray(classes_1), np.asarray(classes_2)
    if classes_1.shape != classes_2.shape or classes_1.ndim != 2:
        raise ZonalError(f"both epochs must be 2-D on one grid, got shapes {classes_1.shape} and {classes_2.shape}")
    check_class_dtype(classes_1.dtype, "classes_1")
    check_class_dtype(classes_2.dtype, "classes_2")
    job = zonal_job(transform, crs, *classes_1.shape, [parcel], block_rows=classes_1.shape[0], epochs=2)
    strips = (strip_histograms(job, s, _strip_arrays(s, classes_1, classes_2)) for s in job.strips)
    return job_transitions(job, strips, nodata_1=nodata_1, nodata_2=nodata_2)[0]
