"""The embedded default as a user runs it: `manage.py runserver` on SQLite with no broker, tasks in-process.

A separate server process (the test database and the tests' inline tasks are not what a user runs). Webhook
attempts go out after the response, on the server's runner threads, at the backoff the delivery log states; a
receiver that accepts and never answers delays no request; a run answers 202 `queued` at once and is seen
`running`, then `succeeded`. Every /api/ answer is checked against the OpenAPI schema, as in the other tests.
"""

import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.accounting.test_runs import POOLS, county_raster, parcel_feature
from tests.conftest import PROJECT_ROOT
from tests.foundation.contract import project_contract
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.django_db  # only for the schema the contract is generated from


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A fresh var/ folder, migrated, with one user per role given, served by runserver on a free port."""

    def __init__(self, folder: Path, **env):
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TEST_DATABASE_NAME",
                                 "MEDIA_ROOT")}
        self.env.update(DJANGO_SETTINGS_MODULE="config.settings.base", TANHUI_VAR_DIR=str(folder), **env)
        self.port, self.folder, self.process, self.tokens = _free_port(), folder, None, {}

    def manage(self, *args) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=self.env, check=True,
                              capture_output=True, text=True, timeout=120).stdout.strip()

    def __enter__(self):
        self.manage("migrate", "--no-input")
        self.tokens = json.loads(self.manage("shell", "-c", (
            "import json; from geo.accounts import api_user_create; print(json.dumps({"
            "'bureau': api_user_create(username='bureau-1', role='bureau', county_code='510727')[1], "
            "'bank': api_user_create(username='bank-1', role='bank')[1]}))")).splitlines()[-1])
        self.log = open(self.folder / "server.log", "w")  # closed in __exit__
        self.process = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}",
                                         "--noreload"], cwd=PROJECT_ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.logged()}")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()

    def logged(self) -> str:
        return (self.folder / "server.log").read_text()[-3000:]

    def call(self, role: str, method: str, path: str, body=None, *, content_type="application/json"):
        """(status, JSON body, seconds taken); the answer checked against the schema."""
        data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers={
            "Authorization": f"Token {self.tokens[role]}", **({"Content-Type": content_type} if data else {})})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, error.headers, error.read()
        taken_s = time.monotonic() - started
        project_contract().check(method=method, path=path.split("?")[0], status=status,
                                 content_type=headers.get("Content-Type"), body=raw,
                                 request_content_type=content_type if data and body is not None else None,
                                 request_body=data if content_type == "application/json" and data else b"")
        return status, json.loads(raw) if raw else None, taken_s


def _multipart(fields: dict, file_field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{path.name}"\r\n'
                 f"Content-Type: image/tiff\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_embedded_server_sends_webhooks_after_the_response_at_their_backoff_and_runs_in_the_background(tmp_path):
    silent = socket.socket()  # accepts connections (the kernel does), never reads, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    statuses, received = [500, 503], []

    def answer(path, headers, body):
        received.append((time.monotonic(), json.loads(body)["event"]))
        return (statuses.pop(0) if statuses else 204), None, b""

    env = {"WEBHOOK_RETRY_BASE_S": "1", "WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_TIMEOUT_S": "5",
           "INPROCESS_THREADS": "3", "LEDGER_CHECKPOINT_INTERVAL_S": "3600"}
    with LoopbackServer(answer, path="/hooks") as receiver, Server(tmp_path / "var", **env) as server:
        for url in (receiver.url, f"http://127.0.0.1:{silent.getsockname()[1]}/never"):
            status, _, _ = server.call("bank", "POST", "/api/webhooks/", {"url": url, "event_kinds": ["party.create"]})
            assert status == 201
        status, _, taken_s = server.call("bureau", "POST", "/api/parties/",
                                         {"kind": "household", "name": "Wu household"})
        sent_at = time.monotonic()
        assert status == 201 and taken_s < 1.0, (taken_s, server.logged())  # nothing waits for the receivers
        for _ in range(200):  # attempts at about 0 s, 1 s and 1 + 2 s
            if len(received) == 3:
                break
            time.sleep(0.05)
        assert len(received) == 3, (received, server.logged())
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(received)]
        assert received[0][0] - sent_at < 1.0
        assert 0.9 <= gaps[0] < 2.5 and 1.9 <= gaps[1] < 3.5, gaps  # the waits the log records, not milliseconds
        _, subscriptions, _ = server.call("bank", "GET", "/api/webhooks/")
        log = server.call("bank", "GET", f"/api/webhooks/{subscriptions['results'][0]['id']}/deliveries/")[1]
        attempts = log["results"][0]["attempt_log"]
        assert [(a["status_code"], a["retry_in_s"]) for a in attempts] == [(500, 1), (503, 2), (204, None)]

        # A run: 202 at once, in the state it is in, then running and succeeded on the server's threads.
        raster_path = county_raster(tmp_path / "r2020.tif")
        body, content_type = _multipart({"epoch": 2020, "legend": "clcd"}, "file", raster_path)
        status, raster, _ = server.call("bureau", "POST", "/api/rasters/", body, content_type=content_type)
        assert status == 201, raster
        parcels = {"type": "FeatureCollection", "features": [
            parcel_feature("F-1", 452_005, 3_584_505, 452_495, 3_585_995),
            parcel_feature("G-1", 453_505, 3_584_505, 453_995, 3_585_995)]}
        assert server.call("bureau", "POST", "/api/parcels/", parcels)[0] == 201
        _, method, _ = server.call("bureau", "POST", "/api/methods/", {"kind": "pool_table",
                                                                       "parameters": {"pools": POOLS}})
        status, run, taken_s = server.call("bureau", "POST", "/api/runs/", {
            "method_version": method["id"], "raster": raster["id"], "county": "510727"})
        assert status == 202 and run["status"] in ("queued", "running") and taken_s < 1.0, (run, taken_s)
        seen = [run["status"]]
        for _ in range(300):
            run = server.call("bureau", "GET", f"/api/runs/{run['id']}/")[1]
            seen.append(run["status"])
            if run["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        assert run["status"] == "succeeded", (run, server.logged())
        assert run["progress"] == {"parcels_done": 2, "parcels_total": 2}
    silent.close()
