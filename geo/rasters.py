"""Land-cover raster inspection and normalisation with rasterio. No Django: paths in, facts and files out."""

import contextlib
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Interleaving, Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geo.errors import RasterError, RasterTooManyPixelsError, gettext_noop
from geo.geotiff import open_geotiff
from geo.legends import Legend

HASH_CHUNK_BYTES = 4 * 1024 * 1024
# Rows per histogram window: 36,000-column rows x 256 rows of Byte is 9 MB, so memory stays flat.
_HISTOGRAM_ROWS = 256
NORMALISED_BLOCK_PX = 512
# The largest block (tile or strip) GDAL may have to decompress at once: a 4,096 x 4,096 tile of Float32. A file that
# stores its whole image as one compressed strip would otherwise be inflated whole by the first windowed read.
MAX_BLOCK_BYTES = 64 * 1024**2


@dataclass(frozen=True, slots=True)
class RasterFacts:
    """What an ingested raster is: its grid, its CRS and the pixel count of every class."""

    width: int
    height: int
    dtype: str
    nodata: float | None
    crs_wkt: str
    epsg: int | None
    transform: tuple[float, float, float, float, float, float]  # GDAL order: a, b, c, d, e, f (Affine)
    band: int
    class_pixel_counts: dict[int, int]  # nodata excluded


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _class_pixel_counts(dataset, band: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    nodata = dataset.nodata
    small = dataset.dtypes[band - 1] in ("uint8", "int8", "uint16")
    offset = 128 if dataset.dtypes[band - 1] == "int8" else 0
    totals = np.zeros(65536 if small else 0, dtype=np.int64)
    for row_off in range(0, dataset.height, _HISTOGRAM_ROWS):
        window = Window(0, row_off, dataset.width, min(_HISTOGRAM_ROWS, dataset.height - row_off))
        block = _read(dataset, band, window)
        if small:
            totals[: 65536] += np.bincount((block.astype(np.int32) + offset).ravel(), minlength=65536)
        else:
            values, block_counts = np.unique(block, return_counts=True)
            for value, count in zip(values.tolist(), block_counts.tolist(), strict=True):
                counts[int(value)] = counts.get(int(value), 0) + int(count)
    if small:
        for index in np.flatnonzero(totals).tolist():
            counts[index - offset] = int(totals[index])
    if nodata is not None and float(nodata).is_integer():
        counts.pop(int(nodata), None)
    return dict(sorted(counts.items()))


def _read(dataset, band: int, window: Window) -> np.ndarray:
    """One window of one band; RasterError when GDAL cannot decode it (a truncated or damaged file)."""
    try:
        return dataset.read(band, window=window)
    except RasterioError as exc:
        raise _unreadable(exc) from None


def _unreadable(exc: BaseException) -> RasterError:
    # rasterio's own message only points at GDAL's ("See previous exception"), which names the scratch file first.
    reason = str(exc.__cause__ or exc)
    reason = reason.split(", ", 1)[1] if reason.startswith(("/", "tmp")) and ", " in reason else reason
    return RasterError(gettext_noop("the raster's pixels cannot be read (the file is truncated or damaged): "
                                    "%(reason)s"), reason=reason, extensions={})


def check_declared_size(dataset, *, max_pixels: int) -> None:
    """Refuse a raster by what its header declares, before a pixel is read: more than `max_pixels` pixels in all
    its bands (RasterTooManyPixelsError), or a block (tile or strip) over MAX_BLOCK_BYTES (RasterError), which
    GDAL would have to inflate whole to read any window of it."""
    pixels = dataset.width * dataset.height * dataset.count
    if pixels > max_pixels:
        raise RasterTooManyPixelsError(width=dataset.width, height=dataset.height, band_count=dataset.count,
                                       limit_pixels=max_pixels)
    rows, cols = dataset.block_shapes[0]
    bands_per_block = dataset.count if dataset.interleaving == Interleaving.pixel else 1
    block_bytes = rows * cols * bands_per_block * max(np.dtype(t).itemsize for t in dataset.dtypes)
    if block_bytes > MAX_BLOCK_BYTES:
        raise RasterError(gettext_noop("the raster stores its pixels in blocks of %(cols)s x %(rows)s pixels "
                                       "(%(block_bytes)s bytes each once decompressed; the limit is "
                                       "%(limit_bytes)s): write it tiled, e.g. gdal_translate -co TILED=YES"),
                          cols=cols, rows=rows, block_bytes=block_bytes, limit_bytes=MAX_BLOCK_BYTES)


def inspect_raster(path, *, legend: Legend, band: int | None = None, max_pixels: int) -> RasterFacts:
    """Open the GeoTIFF at `path` (`geo.geotiff.open_geotiff`) and check it is a usable land-cover raster; raise
    RasterError naming the first fault.

    Faults, in order: not a GeoTIFF; more pixels declared than `max_pixels` (width x height x bands), or blocks too
    large to decompress (`check_declared_size`, before any pixel is read); no CRS; a rotated or missing
    geotransform; more than one band without `band`; a band number out of range; a non-integer band; pixels that
    cannot be read (a truncated file); classes present that `legend` does not define (all listed).
    """
    with open_geotiff(path) as dataset:
        if dataset.count < 1:
            raise RasterError(gettext_noop("not a raster: the file has no bands"))
        check_declared_size(dataset, max_pixels=max_pixels)
        if dataset.crs is None:
            raise RasterError(gettext_noop("the raster has no CRS (coordinate reference system); georeference it "
                                           "first"))
        transform = dataset.transform
        if transform.b != 0 or transform.d != 0:
            raise RasterError(gettext_noop("the raster's geotransform is rotated (b=%(b)s, d=%(d)s); warp it to a "
                                           "north-up grid first"), b=transform.b, d=transform.d,
                              extensions={"transform": list(transform)[:6]})
        if transform.is_identity or transform.a == 0 or transform.e == 0:
            raise RasterError(gettext_noop("the raster has no geotransform (pixel size and origin); georeference it "
                                           "first"))
        if band is None:
            if dataset.count > 1:
                raise RasterError(gettext_noop("the raster has %(band_count)s bands; say which holds land cover "
                                               "(band)"), band_count=dataset.count)
            band = 1
        if not 1 <= band <= dataset.count:
            raise RasterError(gettext_noop("band %(band)s does not exist; the raster has %(band_count)s band(s)"),
                              band=band, band_count=dataset.count, extensions={"band_count": dataset.count})
        dtype = dataset.dtypes[band - 1]
        if not np.issubdtype(np.dtype(dtype), np.integer):
            raise RasterError(gettext_noop("land cover must be an integer band; band %(band)s is %(dtype)s"),
                              band=band, dtype=dtype, extensions={"dtype": dtype})
        counts = _class_pixel_counts(dataset, band)
        missing = legend.missing_codes(counts)
        if missing:
            raise RasterError(gettext_noop("legend %(legend)s does not define classes present in the raster: "
                                           "%(codes)s"), legend=repr(legend.name),
                              codes=", ".join(map(str, missing)), extensions={"missing_codes": missing})
        crs = dataset.crs
        return RasterFacts(
            width=dataset.width, height=dataset.height, dtype=dtype,
            nodata=None if dataset.nodata is None else float(dataset.nodata),
            crs_wkt=crs.to_wkt(), epsg=crs.to_epsg(), transform=tuple(transform)[:6], band=band,
            class_pixel_counts=counts,
        )


def normalise_raster(src_path, dst_path, *, band: int) -> None:
    """Write band `band` of the GeoTIFF at `src_path` (checked by `inspect_raster` first) to `dst_path` as a Cloud
    Optimized GeoTIFF: 512 px tiles, DEFLATE, nearest-neighbour overviews (classes must never be averaged). Reads
    and writes by windows; GDAL opens only GeoTIFFs here too (`geo.geotiff`). A one-band copy of a multi-band
    source is written beside `dst_path` first and removed on every path. RasterError when pixels cannot be read."""
    band_copy = f"{dst_path}.band.tif"
    try:
        with open_geotiff(src_path) as src:
            source = src_path
            if src.count != 1:
                source = band_copy
                profile = src.profile | {"count": 1, "driver": "GTiff", "tiled": True,
                                         "blockxsize": NORMALISED_BLOCK_PX, "blockysize": NORMALISED_BLOCK_PX,
                                         "compress": "deflate", "BIGTIFF": "IF_SAFER"}
                profile.pop("photometric", None)
                with rasterio.open(band_copy, "w", **profile) as out:
                    for _, window in out.block_windows(1):
                        out.write(_read(src, band, window), 1, window=window)
        with open_geotiff(source) as dataset:
            try:
                rasterio.shutil.copy(dataset, dst_path, driver="COG", COMPRESS="DEFLATE",
                                     BLOCKSIZE=NORMALISED_BLOCK_PX, RESAMPLING=Resampling.nearest.name.upper(),
                                     BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")
            except RasterioError as exc:
                raise _unreadable(exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(band_copy)
