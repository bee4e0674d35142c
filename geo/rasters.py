"""Land-cover raster inspection and normalisation with rasterio. No Django: paths in, facts and files out."""

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from geo.errors import RasterError, gettext_noop
from geo.legends import Legend

HASH_CHUNK_BYTES = 4 * 1024 * 1024
# Rows per histogram window: 36,000-column rows x 256 rows of Byte is 9 MB, so memory stays flat.
_HISTOGRAM_ROWS = 256
NORMALISED_BLOCK_PX = 512


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
        block = dataset.read(band, window=window)
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


def inspect_raster(path, *, legend: Legend, band: int | None = None) -> RasterFacts:
    """Open `path` and check it is a usable land-cover raster; raise RasterError naming the first fault.

    Faults: not a raster; no CRS; a rotated or missing geotransform; more than one band without `band`;
    a band number out of range; a non-integer band; classes present that `legend` does not define (all listed).
    """
    try:
        dataset = rasterio.open(path)
    except RasterioIOError:
        raise RasterError(gettext_noop("not a raster: GDAL cannot read this file as an image")) from None
    with dataset:
        if dataset.count < 1:
            raise RasterError(gettext_noop("not a raster: the file has no bands"))
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
    """Write band `band` of `src_path` to `dst_path` as a Cloud Optimized GeoTIFF: 512 px tiles, DEFLATE,
    nearest-neighbour overviews (classes must never be averaged). Reads and writes by windows."""
    with rasterio.open(src_path) as src:
        if src.count == 1:
            source = src_path
        else:
            source = f"{dst_path}.band.tif"
            profile = src.profile | {"count": 1, "driver": "GTiff", "tiled": True, "blockxsize": NORMALISED_BLOCK_PX,
                                     "blockysize": NORMALISED_BLOCK_PX, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
            profile.pop("photometric", None)
            with rasterio.open(source, "w", **profile) as out:
                for _, window in out.block_windows(1):
                    out.write(src.read(band, window=window), 1, window=window)
    try:
        rasterio.shutil.copy(source, dst_path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=NORMALISED_BLOCK_PX,
                             RESAMPLING=Resampling.nearest.name.upper(), BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")
    finally:
        if source != src_path:
            os.remove(source)
