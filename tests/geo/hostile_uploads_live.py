"""Hostile uploads against a real gunicorn worker: time, the worker's peak memory, and what is left in MEDIA_ROOT/tmp.

Not a test (pytest does not collect it): the figures of docs/reliability.md, "Hostile uploads". Run from the
project root:

    python -m tests.geo.hostile_uploads_live --runs 5 2>/dev/null   # stderr: the server's request log

It migrates a throwaway SQLite database in a temporary folder, creates a bureau user, starts
``gunicorn config.wsgi`` with one sync worker on 127.0.0.1 (loopback only), and sends each hostile input RUNS times.
For each it prints the median and the largest wall time of the request, and the median and largest peak resident
memory of the worker while it handled it (VmHWM, reset before each request through /proc/<worker>/clear_refs; the
worker's resident size before the request is printed beside it). Then it kills the worker with SIGKILL in the
middle of a 60 MB upload, lets gunicorn start another, and lists what is left in MEDIA_ROOT/tmp.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "hostileuploadboundary"


# --- the server and its worker --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    """The live (not zombie) child processes of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if int(parent) == pid and state not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _kib(pid: int, field: str) -> int | None:
    try:
        found = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


class Server:
    def __init__(self, folder: Path):
        self.folder, self.port = folder, _free_port()
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "TANHUI_VAR_DIR": str(folder),
                    "MEDIA_ROOT": str(folder / "media"), "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "ERROR"}
        self.env.pop("DATABASE_URL", None)
        self.env.pop("CELERY_BROKER_URL", None)

    def prepare(self) -> str:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=PROJECT_ROOT,
                       env=self.env, check=True)
        made = subprocess.run([sys.executable, "-c", (
            "import django; django.setup()\n"
            "from geo.accounts import api_user_create\n"
            "user, token = api_user_create(username='bureau', role='bureau', county_code='510727')\n"
            "print(token)\n")], cwd=PROJECT_ROOT, env=self.env, check=True, capture_output=True, text=True)
        return made.stdout.strip().splitlines()[-1]

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--timeout", "120", "--log-level", "warning"], cwd=PROJECT_ROOT, env=self.env)
        self.wait_ready()
        return self

    def wait_ready(self, old_worker: int | None = None) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            workers = [pid for pid in _children(self.process.pid) if pid != old_worker]
            if workers:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                        probe.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                        if probe.recv(16).startswith(b"HTTP/1"):
                            return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    @property
    def worker(self) -> int:
        return _children(self.process.pid)[0]

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


# --- requests -------------------------------------------------------------------------------------------------------


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={BOUNDARY}"


def send(port: int, path: str, body: bytes, content_type: str, *, token: str | None = None,
         declared_length: int | None = None) -> tuple[int | None, dict]:
    """POST `body` (or only its start, when `declared_length` says the body is longer) and read the answer: (status,
    problem body), or (None, {"error": ...}) when the connection broke (a worker that died)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {declared_length or len(body)}\r\nConnection: close\r\n")
    if token:
        head += f"Authorization: Token {token}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=150) as connection:
        try:
            connection.sendall(head.encode() + b"\r\n" + body)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        except OSError as exc:
            return None, {"error": f"{type(exc).__name__}: {exc}"}
    if not answer:
        return None, {"error": "connection closed without an answer"}
    status = int(answer.split(b" ", 2)[1])
    content = answer.split(b"\r\n\r\n", 1)[1]
    try:
        return status, json.loads(content)
    except ValueError:
        return status, {"body": content[:200].decode("latin-1")}


# --- the hostile inputs ---------------------------------------------------------------------------------------------


class Recorder:
    """A loopback HTTP server that records every request; a VRT's /vsicurl/ source points here."""

    def __init__(self):
        self.requests = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                recorded.append((self.command, self.path))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _vrt(source: str, size: int) -> bytes:
    return (f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>EPSG:32648</SRS>'
            "<GeoTransform>400000, 10, 0, 3600000, 0, -10</GeoTransform><VRTRasterBand dataType=\"Byte\" band=\"1\">"
            f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>'
            "</SimpleSource></VRTRasterBand></VRTDataset>").encode()


def _geotiffs(folder: Path) -> dict[str, bytes]:
    import numpy as np
    import rasterio
    import rasterio.shutil
    from rasterio.transform import Affine

    profile = {"driver": "GTiff", "count": 1, "dtype": "uint8", "crs": "EPSG:32648",
               "transform": Affine(10, 0, 400_000, 0, -10, 3_600_000), "tiled": True, "compress": "deflate"}
    with rasterio.open(folder / "bomb.tif", "w", width=100_000, height=100_000, blockxsize=1024, blockysize=1024,
                       SPARSE_OK=True, **profile):
        pass
    with rasterio.open(folder / "whole.tif", "w", width=512, height=512, blockxsize=256, blockysize=256,
                       **profile) as out:
        out.write(np.ones((1, 512, 512), np.uint8))
    rasterio.shutil.copy(folder / "whole.tif", folder / "cog.tif", driver="COG", COMPRESS="NONE", BLOCKSIZE=256)
    cog = (folder / "cog.tif").read_bytes()
    return {"bomb": (folder / "bomb.tif").read_bytes(), "truncated": cog[: len(cog) // 2]}


def cases(folder: Path, recorder: Recorder) -> list[tuple[str, dict]]:
    tiffs = _geotiffs(folder)
    deep = b"[" * 100_000 + b"]" * 100_000
    raster = {"epoch": "2020", "legend": "clcd"}
    return [
        ("geotiff 77 KB declaring 100,000 x 100,000 px", {"path": "/api/rasters/", "multipart": (
            raster, {"file": ("bomb.tif", tiffs["bomb"])}), "auth": True}),
        ("vrt, source /vsicurl/ on loopback", {"path": "/api/rasters/", "multipart": (
            raster, {"file": ("remote.tif", _vrt(f"/vsicurl/{recorder.url}/county.tif", 4))}), "auth": True}),
        ("vrt, source a server path", {"path": "/api/rasters/", "multipart": (
            raster, {"file": ("local.tif", _vrt("/etc/hostname", 4))}), "auth": True}),
        ("vrt 400 B declaring 100,000 x 100,000 px", {"path": "/api/rasters/", "multipart": (
            raster, {"file": ("bomb.vrt", _vrt("/dev/zero", 100_000))}), "auth": True}),
        ("geotiff truncated to half", {"path": "/api/rasters/", "multipart": (
            raster, {"file": ("truncated.tif", tiffs["truncated"])}), "auth": True}),
        ("json 200 KB nested 100,000 deep, POST /api/parcels/", {"path": "/api/parcels/", "json": deep,
                                                                 "auth": True}),
        ("json 200 KB nested 100,000 deep, POST /api/verify/ (anonymous)", {"path": "/api/verify/", "json": deep}),
        ("legend file nested 100,000 deep", {"path": "/api/rasters/", "multipart": (
            {"epoch": "2020", "legend": "pingwu"},
            {"file": ("x.tif", tiffs["bomb"]), "legend_file": ("l.json", b'{"classes": ' + deep + b"}")}),
            "auth": True}),
        ("anonymous 105 MB POST /api/verify/", {"path": "/api/verify/", "json": b" " * 65536,
                                                "declared_length": 105_000_000}),
    ]


def _scratch(media: Path) -> list[str]:
    root = media / "tmp"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def measure(server: Server, token: str, case: dict) -> dict:
    worker = server.worker
    Path(f"/proc/{worker}/clear_refs").write_text("5")
    before = _kib(worker, "VmRSS")
    if "multipart" in case:
        body, content_type = multipart(*case["multipart"])
    else:
        body, content_type = case["json"], "application/json"
    started = time.perf_counter()
    status, answer = send(server.port, case["path"], body, content_type, token=token if case.get("auth") else None,
                          declared_length=case.get("declared_length"))
    seconds = time.perf_counter() - started
    peak = _kib(worker, "VmHWM") if worker in _children(server.process.pid) else None
    fact = {"status": status, "seconds": seconds, "rss_before_mib": before / 1024, "peak_mib": peak and peak / 1024,
            "detail": answer.get("detail") or answer.get("error") or answer.get("body")}
    if peak is None:  # the worker died: gunicorn starts another
        fact["detail"] = f"worker died ({fact['detail']})"
        server.wait_ready(old_worker=worker)
    return fact


def killed_mid_upload(server: Server, token: str) -> dict:
    """SIGKILL the worker while it receives a 60 MB raster (streamed into its scratch folder), then see what the
    next worker leaves in MEDIA_ROOT/tmp once it has started."""
    media = server.folder / "media"
    body, content_type = multipart({"epoch": "2020", "legend": "clcd"}, {"file": ("big.tif", b"II*\x00" + bytes(
        60_000_000))})
    worker = server.worker
    head = (f"POST /api/rasters/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: Token {token}\r\nConnection: close\r\n\r\n").encode()
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    connection.sendall(head + body[: len(body) // 2])
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.is_file() for p in (media / "tmp").rglob("*.upload*")):
        time.sleep(0.05)
    during = _scratch(media)
    os.kill(worker, signal.SIGKILL)
    connection.close()
    server.wait_ready(old_worker=worker)
    return {"left_during_upload": during, "left_after_restart": _scratch(media)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="only the inputs whose name holds this text")
    arguments = parser.parse_args()
    runs = arguments.runs
    with tempfile.TemporaryDirectory(prefix="tanhui-hostile-") as folder_name:
        folder = Path(folder_name)
        server = Server(folder)
        token = server.prepare()
        recorder = Recorder()
        with server:
            all_cases = cases(folder, recorder)
            send(server.port, "/api/verify/", b"{}", "application/json")  # warm the worker up
            print(f"{'input':66} {'status':>6} {'median s':>9} {'max s':>7} {'RSS before':>10} "
                  f"{'peak MiB':>9} {'max peak':>8}")
            for name, case in all_cases:
                if arguments.only not in name:
                    continue
                facts = [measure(server, token, case) for _ in range(runs)]
                peaks = [f["peak_mib"] for f in facts if f["peak_mib"] is not None]
                statuses = sorted({str(f["status"]) for f in facts})
                print(f"{name:66} {'/'.join(statuses):>6} {statistics.median(f['seconds'] for f in facts):9.3f} "
                      f"{max(f['seconds'] for f in facts):7.3f} "
                      f"{statistics.median(f['rss_before_mib'] for f in facts):10.0f} "
                      f"{statistics.median(peaks) if peaks else float('nan'):9.0f} "
                      f"{max(peaks) if peaks else float('nan'):8.0f}")
                print(f"{'':66} {facts[-1]['detail']!s:.110}")
            print(f"requests the VRTs' /vsicurl/ source received: {len(recorder.requests)}")
            print(f"left in MEDIA_ROOT/tmp after every case: {_scratch(folder / 'media')}")
            if not arguments.only:
                print(f"worker killed mid-upload: {killed_mid_upload(server, token)}")


if __name__ == "__main__":
    main()
