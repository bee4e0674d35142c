"""How the service lets GDAL open a raster: GeoTIFF only, a local file, no network. No Django: paths in, datasets out.

Every raster the service reads is opened by `open_geotiff`, inside `gdal_env()` (uploads in `geo.rasters`, the stored
copies every run reads in `geo.zonal_files`). An upload is its own bytes and nothing else:

- the file must start with a TIFF or BigTIFF signature, checked by Python before GDAL sees a byte of it, so a VRT
  (XML that names other files or URLs), an HDF, a NetCDF or anything else GDAL could parse is refused unread;
- GDAL opens it with the GTiff driver alone (a Cloud Optimized GeoTIFF is a GeoTIFF), never probing the other
  drivers it has;
- the path is a local file path: GDAL's virtual file systems (``/vsicurl/``, ``/vsizip/``, ``/vsis3/``, ``/vsimem/``,
  ...) and ``DRIVER:...`` connection strings are refused;
- GDAL lists no directory, reads and writes no side-car file and opens no URL (`GDAL_CONFIG`), whatever a file
  names inside.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import rasterio
from rasterio.errors import RasterioIOError

from geo.errors import RasterError, gettext_noop

__all__ = ["GDAL_CONFIG", "TIFF_SIGNATURES", "NotGeoTIFFError", "gdal_env", "open_geotiff", "require_geotiff"]

# Classic TIFF (TIFF 6.0: byte order, then 42) and BigTIFF (byte order, then 43), little- and big-endian.
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

# GDAL configuration options for every dataset the service opens (rasterio.Env takes them as keywords).
GDAL_CONFIG = {
    # Never list the file's directory, so never find side-car files (.aux.xml, .ovr, .msk, world files) that
    # another file in that directory could provide.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # No PAM side-car (.aux.xml) is read or written.
    "GDAL_PAM_ENABLED": "NO",
    # /vsicurl/ and the network file systems built on it (/vsis3/, /vsigs/, /vsiaz/, /vsiswift/, ...) may open
    # only files with this extension, or this one file name: none exists, so none opens and no request is sent.
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tanhui-no-network",
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "/vsicurl/tanhui-no-network",
    # And should a request ever be made regardless: no retry, and give up after a second.
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
}
# PROJ (datum grids) stays off the network too: its proj.ini says network = off, and nothing here sets PROJ_NETWORK.


class NotGeoTIFFError(RasterError):
    """A file that is not a GeoTIFF (TIFF or BigTIFF signature), or a path that is not a local file."""


def gdal_env() -> rasterio.Env:
    """A rasterio.Env with `GDAL_CONFIG`: enter it around every open and every read of a raster."""
    return rasterio.Env(**GDAL_CONFIG)


def require_geotiff(path: str | os.PathLike) -> None:
    """Raise NotGeoTIFFError unless `path` is a local file whose first four bytes are a TIFF or BigTIFF signature.

    Reads four bytes with Python; GDAL is not involved. A path that names one of GDAL's virtual file systems
    (``/vsi...``) or a driver's connection string (``GTIFF_DIR:...``, ``HDF5:...``) is refused as it is.
    """
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if name.startswith("/vsi") or ":" in name.split("/", 1)[0]:
        raise NotGeoTIFFError(gettext_noop("not a local file: %(path)s (GDAL virtual file systems and connection "
                                           "strings are not opened)"), path=repr(name), extensions={})
    try:
        with open(name, "rb") as handle:
            signature = handle.read(4)
    except OSError as exc:
        raise NotGeoTIFFError(gettext_noop("the raster file cannot be read: %(reason)s"), reason=exc.strerror,
                              extensions={}) from None
    if signature not in TIFF_SIGNATURES:
        raise NotGeoTIFFError(gettext_noop("not a GeoTIFF: the file starts with %(signature)s, not a TIFF signature "
                                           "(II*, MM*, or II+, MM+ for BigTIFF); only GeoTIFF and Cloud Optimized "
                                           "GeoTIFF are accepted"), signature=_shown(signature),
                              extensions={"signature_hex": signature.hex()})


@contextmanager
def open_geotiff(path: str | os.PathLike) -> Iterator[rasterio.io.DatasetReader]:
    """Open the GeoTIFF at local `path` for reading with the GTiff driver only, inside `gdal_env()`; reads made in
    the block run under that environment too. Opening reads the header and the image file directories (tile and
    strip offsets), no pixel.

    Raises NotGeoTIFFError (see `require_geotiff`), or RasterError when GDAL's GTiff driver cannot read the file.
    """
    require_geotiff(path)
    with gdal_env():
        try:
            dataset = rasterio.open(path, driver="GTiff")
        except RasterioIOError as exc:
            raise RasterError(gettext_noop("not a raster GDAL can read as a GeoTIFF: %(reason)s"),
                              reason=_gdal_reason(exc), extensions={}) from None
        with dataset:
            yield dataset


def _shown(signature: bytes) -> str:
    """The first bytes of a file for a person: printable ASCII as it is, anything else as '.', then the hex."""
    if not signature:
        return "nothing (the file is empty)"
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in signature)
    return f'"{text}" ({signature.hex(" ")})'


def _gdal_reason(exc: BaseException) -> str:
    """GDAL's message, without the local path it names (which says nothing to the uploader)."""
    return str(exc).split(": ", 1)[-1] if str(exc).startswith("/") else str(exc)
