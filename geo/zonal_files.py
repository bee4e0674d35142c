"""Zonal statistics over raster files: the file and process layer around the pure engine `geo.zonal`.

This module opens land-cover rasters (`open_land_cover`, which can first check the file's sha256), reads each
strip of a `geo.zonal.ZonalJob` by one windowed read, and runs the strips of a large job in worker processes.
Every number comes from `geo.zonal`; nothing here does arithmetic on pixels. Results do not depend on the number
of workers: the strips are fixed by the raster, and their histograms are summed in strip order.

Handles: a raster opened with `open_land_cover` and passed to `zonal_class_areas` or `zonal_transitions` is read
through that one handle, strip after strip (a caller that reads one raster several times opens it once). A path
is opened once per call. Worker processes, which cannot share a GDAL handle, each open the file once, when they
start.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from geo.errors import RasterError, RasterFileChangedError, ZonalError
from geo.geotiff import open_geotiff
from geo.rasters import sha256_file
from geo.zonal import (
    ClassAreas,
    ClassTransitions,
    Strip,
    StripHistograms,
    ZonalJob,
    check_class_dtype,
    check_north_up,
    job_class_areas,
    job_transitions,
    strip_histograms,
    zonal_job,
)

__all__ = ["LandCoverFile", "open_land_cover", "zonal_class_areas", "zonal_transitions"]

# Jobs whose parcel windows cover more pixels than this run in worker processes (numpy's bincount and the many
# small array operations per parcel hold the GIL, so threads barely overlap); smaller jobs run in one.
PROCESS_JOB_CELLS = 20_000_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class LandCoverFile:
    """An open land-cover raster (`open_land_cover`): one integer band of class codes on a north-up grid.

    ``dataset``: the rasterio handle (closed when the `open_land_cover` block ends). ``nodata``: the band's
    nodata value as a class code, or None when it has none or it cannot occur in the band's dtype.
    ``block_rows``: rows per block of the band, what a strip is made of.
    """

    path: str
    band: int
    dataset: rasterio.io.DatasetReader
    nodata: int | None
    block_rows: int

    @property
    def transform(self):
        return self.dataset.transform

    @property
    def crs(self):
        """The raster's CRS (a rasterio CRS)."""
        return self.dataset.crs

    @property
    def height(self) -> int:
        return self.dataset.height

    @property
    def width(self) -> int:
        return self.dataset.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the raster's CRS."""
        return tuple(self.dataset.bounds)


def _nodata_code(value, dtype: np.dtype):
    """The band's nodata as an int class code, or None when it cannot occur in the band's dtype."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value != int(value):
        return None
    info = np.iinfo(dtype)
    return int(value) if info.min <= value <= info.max else None


@contextmanager
def open_land_cover(path, *, band: int = 1, sha256: str | None = None) -> Iterator[LandCoverFile]:
    """Open band ``band`` of the raster at ``path`` for zonal reads, and close it when the block ends.

    ``sha256``, when given, is the hex digest the file's bytes must have (recorded when it was stored): the file
    is hashed before it is opened, and `RasterFileChangedError` is raised, reading nothing, when it differs.
    The file is opened as every raster of the service is (`geo.geotiff.open_geotiff`: a local GeoTIFF, the GTiff
    driver only, no network), and read under that GDAL environment while the block runs. Raises `ZonalError` for
    a file that is not such a GeoTIFF, a band out of range, no CRS, a band that is not integer class codes, or a
    rotated grid.
    """
    if sha256 is not None:
        found = sha256_file(path)
        if found != sha256:
            raise RasterFileChangedError(Path(path).name, recorded_sha256=sha256, found_sha256=found)
    with _geotiff(path) as dataset:
        if not 1 <= band <= dataset.count:
            raise ZonalError(f"{path}: band {band} requested, the raster has {dataset.count} band(s)")
        if dataset.crs is None:
            raise ZonalError(f"{path}: the raster has no CRS")
        dtype = check_class_dtype(dataset.dtypes[band - 1], f"{path} band {band}")
        check_north_up(dataset.transform)
        yield LandCoverFile(str(path), band, dataset, _nodata_code(dataset.nodatavals[band - 1], dtype),
                            dataset.block_shapes[band - 1][0])


@contextmanager
def _geotiff(path) -> Iterator[rasterio.io.DatasetReader]:
    """`open_geotiff`, its refusals as ZonalError."""
    stack = ExitStack()
    try:
        dataset = stack.enter_context(open_geotiff(path))
    except RasterError as exc:
        raise ZonalError(f"{path}: {exc}") from None
    with stack:
        yield dataset


@contextmanager
def _opened(raster: LandCoverFile | str | os.PathLike, band: int | None) -> Iterator[LandCoverFile]:
    """``raster`` itself when it is already open (``band`` must then be None or its band), else the path
    opened for the block."""
    if isinstance(raster, LandCoverFile):
        if band is not None and band != raster.band:
            raise ZonalError(f"{raster.path} is open on band {raster.band}, band {band} requested")
        yield raster
        return
    with open_land_cover(raster, band=1 if band is None else band) as opened:
        yield opened


@contextmanager
def _strip_reader(datasets: Sequence[tuple[rasterio.io.DatasetReader, int]]) -> Iterator[Callable]:
    """read(strip) -> the strip's class arrays, one per (dataset, band), all on the first dataset's grid.

    A second raster on another grid is read through a GDAL warped VRT onto the first raster's grid, by nearest
    neighbour (categorical values must not be blended), window by window.
    """
    with ExitStack() as stack:
        first, first_band = datasets[0]
        sources = [(first, first_band)]
        for source, band in datasets[1:]:
            same_grid = (source.crs == first.crs and source.transform == first.transform
                         and source.shape == first.shape)
            if not same_grid:
                source = stack.enter_context(WarpedVRT(
                    source, crs=first.crs, transform=first.transform, width=first.width, height=first.height,
                    resampling=Resampling.nearest, nodata=source.nodatavals[band - 1]))
            sources.append((source, band))

        def read(strip: Strip) -> list[np.ndarray]:
            window = Window(strip.col0, strip.row0, strip.col1 - strip.col0, strip.row1 - strip.row0)
            return [source.read(band, window=window) for source, band in sources]

        yield read


# Worker processes: the job, and the rasters open for the life of the process (set once by _worker_start).
_worker_job: ZonalJob | None = None
_worker_read: Callable | None = None
_worker_files = ExitStack()


def _worker_start(job: ZonalJob, paths_and_bands: Sequence[tuple[str, int]]) -> None:
    """Open each raster once for the life of this worker process; it ends with the pool, and the OS closes the
    files (`_worker_files` holds them open until then)."""
    global _worker_job, _worker_read
    datasets = [(_worker_files.enter_context(_geotiff(path)), band) for path, band in paths_and_bands]
    _worker_job, _worker_read = job, _worker_files.enter_context(_strip_reader(datasets))


def _worker_strip(index: int) -> StripHistograms:
    strip = _worker_job.strips[index]
    return strip_histograms(_worker_job, strip, _worker_read(strip))


def _process_pool(workers: int, job: ZonalJob, rasters: Sequence[LandCoverFile]) -> ProcessPoolExecutor | None:
    """A process pool for a large job, else None (run in this thread)."""
    if workers <= 1 or job.cell_count < PROCESS_JOB_CELLS:
        return None
    if multiprocessing.current_process().daemon:  # a daemonic process may not start children
        return None
    try:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                              else "spawn")
        return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start,
                                   initargs=(job, [(r.path, r.band) for r in rasters]))
    except (OSError, ValueError, AssertionError):  # e.g. a daemonic worker may not start children
        return None


def _reported(results: Iterable[StripHistograms], total: int, on_progress: Progress | None):
    for done, result in enumerate(results, start=1):
        yield result
        if on_progress:
            on_progress(done, total)


@contextmanager
def _strip_results(job: ZonalJob, rasters: Sequence[LandCoverFile], *, workers: int | None,
                   on_progress: Progress | None) -> Iterator[Iterable[StripHistograms]]:
    """Every strip's histograms, in strip order, from worker processes or from this thread."""
    total = len(job.strips)
    if on_progress:
        on_progress(0, total)
    pool = _process_pool(min(max(1, workers or os.cpu_count() or 1), total), job, rasters)
    if pool is not None:
        with pool:
            # map gives results in strip order whatever finishes first, so the sums are the same on every run.
            yield _reported(pool.map(_worker_strip, range(total)), total, on_progress)
        return
    with _strip_reader([(r.dataset, r.band) for r in rasters]) as read:
        yield _reported((strip_histograms(job, s, read(s)) for s in job.strips), total, on_progress)


def zonal_class_areas(raster: LandCoverFile | str | os.PathLike, geometries: Sequence[BaseGeometry | None],
                      geometries_crs, *, band: int | None = None, on_progress: Progress | None = None,
                      workers: int | None = None) -> list[ClassAreas]:
    """Class areas of every geometry over one land-cover raster: one `ClassAreas` per geometry, in order.

    ``raster``: a path to a GeoTIFF (`geo.geotiff`: GeoTIFF and COG only) with an integer band of class codes, a
    CRS and a north-up transform, opened on ``band`` (default 1); or a `LandCoverFile` already open (then ``band`` is
    its own). The band's nodata value marks no data. ``geometries``: shapely Polygons or MultiPolygons (None or
    empty give an all-zero result) in ``geometries_crs`` (pyproj CRS or e.g. "EPSG:4326", "EPSG:4490",
    "EPSG:4544"; longitude first for geographic CRSs). They are reprojected to the raster's CRS; the raster is
    not resampled.

    Every pixel counts by the fraction of its area inside the geometry; areas are ellipsoidal hectares. The
    raster is read once, in strips of whole blocks (memory does not grow with raster size). A large job
    (parcel windows over 20 million pixels) runs its strips in ``workers`` processes (default: every core;
    1 keeps everything in the calling thread); results do not depend on the number of workers.
    ``on_progress(done, total)`` is called from the calling thread with the number of strips done and the
    total. Raises `ZonalError` for unusable input.
    """
    with _opened(raster, band) as land_cover:
        job = zonal_job(land_cover.transform, land_cover.crs, land_cover.height, land_cover.width, geometries,
                        geometries_crs, block_rows=land_cover.block_rows)
        with _strip_results(job, [land_cover], workers=workers, on_progress=on_progress) as results:
            return job_class_areas(job, results, nodata=land_cover.nodata)


def zonal_transitions(raster_1: LandCoverFile | str | os.PathLike, raster_2: LandCoverFile | str | os.PathLike,
                      geometries: Sequence[BaseGeometry | None], geometries_crs, *, band_1: int | None = None,
                      band_2: int | None = None, on_progress: Progress | None = None,
                      workers: int | None = None) -> list[ClassTransitions]:
    """Transitions between two epochs for every geometry: one `ClassTransitions` per geometry, in order.

    Epoch 1 (``raster_1``) defines the grid. Epoch 2 is read on that grid: unchanged when it has the same
    CRS, transform and size, otherwise resampled by nearest neighbour through a GDAL warped VRT, window by
    window (never refused for being on another grid). Pixels of the first grid that epoch 2 does not cover
    count as epoch-2 nodata when epoch 2 declares a nodata value (without one, GDAL fills them with 0, which
    then counts as class 0). Rasters (paths or open `LandCoverFile`s, with ``band_1`` and ``band_2`` as
    ``band`` in `zonal_class_areas`), geometries, CRS, coverage weighting, areas, workers and ``on_progress``
    as in `zonal_class_areas`.
    """
    with _opened(raster_1, band_1) as first, _opened(raster_2, band_2) as second:
        job = zonal_job(first.transform, first.crs, first.height, first.width, geometries, geometries_crs,
                        block_rows=first.block_rows, epochs=2)
        with _strip_results(job, [first, second], workers=workers, on_progress=on_progress) as results:
            return job_transitions(job, results, nodata_1=first.nodata, nodata_2=second.nodata)
