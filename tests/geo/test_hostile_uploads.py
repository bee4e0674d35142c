"""Hostile raster uploads (issue 14): only GeoTIFF opens, GDAL reaches no network, declared sizes are checked before
any pixel is read, damaged files are 422, and no upload leaves a file behind, even from a killed process.

Each refusal is timed and its peak memory measured (`measured`), as facts to report, never asserted: run with -s to
see them, or set HOSTILE_UPLOADS_REPORT to a file to collect them as JSON lines (docs/reliability.md, "Hostile
uploads", gives the command and the medians).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import rasterio
from django.apps import apps
from rasterio.transform import Affine

from geo.errors import RasterError
from geo.geotiff import GDAL_CONFIG, NotGeoTIFFError, gdal_env, open_geotiff, require_geotiff
from geo.models import Raster
from geo.scratch import SCRATCH_STALE_S, scratch_dir, scratch_root, scratch_sweep
from tests.conftest import PROJECT_ROOT
from tests.geo.helpers import measured, media_files, write_tif

pytestmark = pytest.mark.django_db

CRS = "EPSG:32648"
TRANSFORM = Affine(10, 0, 400_000, 0, -10, 3_600_000)


# --- helpers ----------------------------------------------------------------------------------------------------


class RecordingServer:
    """An HTTP server on 127.0.0.1 that records every request it gets (any method) and answers 404."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                recorded.append((self.command, self.path))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_OPTIONS = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def upload(client, path, **fields):
    with open(path, "rb") as handle:
        return client.post("/api/rasters/", {"file": handle, "epoch": 2020, "legend": "clcd", **fields},
                           format="multipart")


def warm_up(client, tmp_path: Path) -> None:
    """One refused upload and one GDAL open first, so that a measurement is of the request, not of this process's
    first request (URL resolution, GDAL's driver registration, the test's own schema check)."""
    tmp_path.mkdir(exist_ok=True)
    stray = tmp_path / "warm-up.tif"
    stray.write_bytes(b"not a raster")
    upload(client, stray)
    with open_geotiff(write_tif(tmp_path / "warm-up-geotiff.tif", np.ones((2, 2), np.uint8), crs=CRS)):
        pass


def vrt(path: Path, source: str, *, size: int = 4) -> Path:
    """A VRT of `size` x `size` pixels whose one band reads `source` (a file path or a /vsicurl/ URL)."""
    path.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{CRS}</SRS>'
        "<GeoTransform>400000, 10, 0, 3600000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>")
    return path


def geotiff_in_tiles(path: Path, width: int, height: int, *, block: int, write: bool = False, **profile) -> Path:
    """A tiled, DEFLATE-compressed GeoTIFF of `width` x `height` uint8 pixels in `block`-pixel tiles; with
    write=False no tile is written (SPARSE_OK): the file is its header and tile index alone."""
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint8", crs=CRS,
                       transform=TRANSFORM, tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                       SPARSE_OK=not write, **profile) as out:
        if write:
            out.write(np.ones((1, height, width), np.uint8))
    return path


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.fixture
def bureau(api_user):
    return api_user("bureau")[1]


@pytest.fixture
def warm(bureau, media, tmp_path):
    warm_up(bureau, tmp_path / "warm")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# --- only GeoTIFF opens, and GDAL reaches no network -------------------------------------------------------------


def test_a_vrt_whose_source_is_a_url_is_refused_without_a_request(bureau, media, tmp_path, warm):
    with RecordingServer() as server:
        source = vrt(tmp_path / "remote.tif", f"/vsicurl/{server.url}/county.tif")
        body = measured("vrt-vsicurl", lambda: problem(upload(bureau, source), 422))
        time.sleep(0.2)  # a request GDAL had sent would have reached the server by now
        assert server.requests == []
    assert body["type"] == "/problems/invalid-raster"
    assert body["detail"].startswith('not a GeoTIFF: the file starts with "<VRT" (3c 56 52 54), not a TIFF signature')
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_a_vrt_whose_source_is_a_server_path_is_refused_unread(bureau, media, tmp_path, warm):
    secret = write_tif(tmp_path / "server-side.tif", np.full((4, 4), 2, np.uint8))
    accessed = secret.stat().st_atime_ns
    os.utime(secret, ns=(accessed - 10**9, secret.stat().st_mtime_ns))  # an atime GDAL's read would move
    source = vrt(tmp_path / "local.vrt", str(secret))
    body = measured("vrt-server-path", lambda: problem(upload(bureau, source), 422))
    assert body["detail"].startswith('not a GeoTIFF: the file starts with "<VRT"')
    assert secret.stat().st_atime_ns == accessed - 10**9  # the named file was not opened for reading
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_a_402_byte_vrt_claiming_ten_billion_pixels_is_refused_by_its_signature(bureau, media, tmp_path, warm):
    source = vrt(tmp_path / "bomb.vrt", "/dev/zero", size=100_000)
    assert source.stat().st_size < 500
    body = measured("vrt-1e10-pixels", lambda: problem(upload(bureau, source), 422))
    assert body["detail"].startswith('not a GeoTIFF: the file starts with "<VRT"')
    assert media_files(media) == []


@pytest.mark.parametrize("path", ["/vsicurl/http://127.0.0.1:9/x.tif", "/vsizip//tmp/x.zip/x.tif",
                                  "/vsimem/x.tif", "GTIFF_DIR:1:/tmp/x.tif", "HDF5:/tmp/x.h5://band"])
def test_gdal_virtual_paths_and_connection_strings_are_refused(path):
    with pytest.raises(NotGeoTIFFError, match=r"^not a local file: "):
        require_geotiff(path)


def test_gdal_itself_opens_no_url_under_the_service_environment(tmp_path):
    """Even a VRT opened with every driver allowed (which the service never does) fetches nothing under
    gdal_env(): /vsicurl/ may open no file at all."""
    with RecordingServer() as server:
        source = vrt(tmp_path / "remote.vrt", f"/vsicurl/{server.url}/county.tif")
        with gdal_env():
            assert rasterio.env.getenv()["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
            for path in (f"/vsicurl/{server.url}/a.tif", f"{server.url}/b.tif"):
                with pytest.raises(rasterio.errors.RasterioIOError):
                    rasterio.open(path)
            with rasterio.open(source) as dataset, pytest.raises(rasterio.errors.RasterioIOError):
                dataset.read(1)
        time.sleep(0.2)
        assert server.requests == []


def test_every_open_runs_under_the_service_gdal_config(tmp_path):
    path = write_tif(tmp_path / "x.tif", np.ones((3, 3), np.uint8), crs=CRS)
    with open_geotiff(path) as dataset:
        options = rasterio.env.getenv()
        assert {key: options.get(key) for key in GDAL_CONFIG} == GDAL_CONFIG
        assert dataset.driver == "GTiff"


@pytest.mark.parametrize("profile", [{"BIGTIFF": "YES"}, {"ENDIANNESS": "BIG"},
                                     {"BIGTIFF": "YES", "ENDIANNESS": "BIG"}],
                         ids=["bigtiff", "big-endian", "big-endian-bigtiff"])
def test_bigtiff_and_big_endian_tiff_are_accepted(bureau, media, tmp_path, profile):
    path = write_tif(tmp_path / "x.tif", np.array([[1, 2], [2, 4]], np.uint8), crs=CRS, **profile)
    assert path.read_bytes()[:4] in (b"II+\x00", b"MM\x00*", b"MM\x00+")
    response = upload(bureau, path)
    assert response.status_code == 201, response.content
    assert response.json()["class_pixel_counts"] == {"1": 1, "2": 2, "4": 1}


def test_a_cloud_optimized_geotiff_is_accepted(bureau, media, tmp_path):
    plain = write_tif(tmp_path / "plain.tif", np.full((64, 64), 2, np.uint8), crs=CRS)
    cog = tmp_path / "cog.tif"
    rasterio.shutil.copy(plain, cog, driver="COG")
    assert upload(bureau, cog).status_code == 201


# --- decompression bombs: the declared size, before any pixel ------------------------------------------------------


def test_a_77_kb_geotiff_claiming_100000_by_100000_pixels_is_413_before_any_pixel_is_read(bureau, media, tmp_path,
                                                                                          warm):
    bomb = geotiff_in_tiles(tmp_path / "bomb.tif", 100_000, 100_000, block=1024)
    assert bomb.stat().st_size < 80_000
    body = measured("geotiff-1e10-pixels-77kb", lambda: problem(upload(bureau, bomb), 413))
    assert body["type"] == "/problems/raster-too-large"
    assert body["detail"] == ("the raster declares 100000 x 100000 pixels in 1 band(s), 10000000000 pixels in all; "
                              "the limit (MAX_RASTER_PIXELS) is 2000000000")
    assert body["pixels"] == 10**10 and body["limit_pixels"] == 2 * 10**9
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_max_raster_pixels_counts_every_band(bureau, media, tmp_path, settings):
    settings.MAX_RASTER_PIXELS = 100
    path = write_tif(tmp_path / "x.tif", np.ones((2, 6, 6), np.uint8), crs=CRS)  # 72 pixels, 2 bands: 72 <= 100
    assert upload(bureau, path, band=1).status_code == 201
    path = write_tif(tmp_path / "y.tif", np.ones((3, 6, 6), np.uint8), crs=CRS)  # 108 pixels in 3 bands
    assert problem(upload(bureau, path, band=1), 413)["pixels"] == 108


def test_a_tile_too_large_to_decompress_is_refused_before_it_is_read(bureau, media, tmp_path, warm):
    one_tile = geotiff_in_tiles(tmp_path / "tile.tif", 9_216, 9_216, block=9_216)  # one 81 MiB tile
    body = measured("geotiff-one-81mib-tile", lambda: problem(upload(bureau, one_tile), 422))
    assert body["detail"] == ("the raster stores its pixels in blocks of 9216 x 9216 pixels (84934656 bytes each once "
                              "decompressed; the limit is 67108864): write it tiled, e.g. gdal_translate -co "
                              "TILED=YES")
    assert media_files(media) == []


# --- damaged files ----------------------------------------------------------------------------------------------


def test_a_truncated_geotiff_is_422_with_a_clear_message(bureau, media, tmp_path, warm):
    whole = geotiff_in_tiles(tmp_path / "whole.tif", 512, 512, block=256, write=True)
    cog = tmp_path / "cog.tif"
    rasterio.shutil.copy(whole, cog, driver="COG", COMPRESS="NONE", BLOCKSIZE=256)  # index first, then the tiles
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(cog.read_bytes()[: cog.stat().st_size // 2])
    body = measured("geotiff-truncated", lambda: problem(upload(bureau, truncated), 422))
    assert body["detail"] == ("the raster's pixels cannot be read (the file is truncated or damaged): band 1: "
                              "IReadBlock failed at X offset 1, Y offset 0: TIFFReadEncodedTile() failed.")
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_a_geotiff_cut_inside_its_header_is_422(bureau, media, tmp_path, warm):
    whole = write_tif(tmp_path / "whole.tif", np.ones((8, 8), np.uint8), crs=CRS)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:12])
    body = measured("geotiff-cut-header", lambda: problem(upload(bureau, cut), 422))
    assert body["detail"].startswith("not a raster GDAL can read as a GeoTIFF: ")
    assert media_files(media) == []


@pytest.mark.parametrize("content", [b"II", b"\x89PNG\r\n\x1a\n", b"PK\x03\x04zip", b"<?xml version='1.0'?>"],
                         ids=["two-bytes", "png", "zip", "xml"])
def test_anything_but_a_tiff_signature_is_refused_before_gdal(bureau, media, tmp_path, content):
    path = tmp_path / "x.tif"
    path.write_bytes(content)
    assert problem(upload(bureau, path), 422)["detail"].startswith("not a GeoTIFF: the file starts with ")
    assert media_files(media) == []


# --- temporary files, on every path --------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed-to-disk"])
def test_an_exception_during_ingest_leaves_no_file(bureau, media, tmp_path, settings, monkeypatch, streamed):
    """Whatever fails during ingest, the upload's copy, Django's streamed upload and the half-written COG go."""
    if streamed:
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # the upload streams into the scratch folder

    def failing(src_path, dst_path, *, band):
        Path(dst_path).write_bytes(b"half a COG")
        raise RuntimeError("the disk is full")

    monkeypatch.setattr("geo.services.normalise_raster", failing)
    path = write_tif(tmp_path / "x.tif", np.ones((8, 8), np.uint8), crs=CRS)
    with pytest.raises(RuntimeError, match="the disk is full"):
        upload(bureau, path)
    assert Raster.objects.count() == 0
    assert media_files(media) == []


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed-to-disk"])
def test_a_stored_raster_leaves_only_its_copy(bureau, media, tmp_path, settings, streamed):
    if streamed:
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10
    path = write_tif(tmp_path / "x.tif", np.ones((8, 8), np.uint8), crs=CRS)
    raster = Raster.objects.get(id=upload(bureau, path).json()["id"])
    assert media_files(media) == [raster.file]


def test_a_killed_process_scratch_folder_is_swept_at_start(media, tmp_path):
    """A process killed mid-upload (SIGKILL: no finally runs) leaves its scratch folder; the next process to start
    (AppConfig.ready) removes it, and keeps the folders of live processes and what is not scratch."""
    script = (
        "import os, signal, django\n"
        "django.setup()\n"
        "from geo.scratch import scratch_dir\n"
        "folder = scratch_dir()\n"
        "(folder / 'upload.tif').write_bytes(b'II*\\x00' + bytes(1000))\n"
        "print(folder, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "MEDIA_ROOT": str(media)}
    killed = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    dead_folder = Path(killed.stdout.strip())
    assert (dead_folder / "upload.tif").is_file()

    mine = scratch_dir()  # this process's own folder: alive, locked, kept
    (mine / "in-flight.tif").write_bytes(b"II*\x00")
    young = scratch_root() / "not-scratch"  # something else in MEDIA_ROOT/tmp, recent: kept
    young.mkdir()
    old = scratch_root() / "left-by-an-old-version.tif"  # a loose file older than SCRATCH_STALE_S: removed
    old.write_bytes(b"x")
    os.utime(old, (time.time() - SCRATCH_STALE_S - 60,) * 2)

    apps.get_app_config("geo").ready()

    assert not dead_folder.exists()
    assert not old.exists()
    assert (mine / "in-flight.tif").is_file() and young.is_dir()


def test_a_live_process_scratch_folder_is_never_swept(media):
    """Another live process's folder (its lock held) survives every sweep, however old its files."""
    script = (
        "import sys, django\n"
        "django.setup()\n"
        "from geo.scratch import scratch_dir\n"
        "folder = scratch_dir()\n"
        "(folder / 'upload.tif').write_bytes(b'x')\n"
        "print(folder, flush=True)\n"
        "sys.stdin.read()\n")  # alive until the test closes its stdin
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "MEDIA_ROOT": str(media)}
    with subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as alive:
        folder = Path(alive.stdout.readline().strip())
        os.utime(folder / "upload.tif", (time.time() - SCRATCH_STALE_S - 60,) * 2)
        assert folder not in scratch_sweep()
        assert (folder / "upload.tif").is_file()
        alive.stdin.close()
        alive.wait(timeout=60)
    assert folder in scratch_sweep()  # its process has ended


def test_open_geotiff_refusals_are_raster_errors(tmp_path):
    with pytest.raises(RasterError, match=r"^the raster file cannot be read: No such file or directory$"):
        require_geotiff(tmp_path / "missing.tif")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(NotGeoTIFFError, match=r"^not a GeoTIFF: the file starts with nothing \(the file is empty\)"):
        require_geotiff(empty)
