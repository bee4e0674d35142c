"""Faults bench on loopback: the broker down for a minute, then back; a worker killed whole in the middle of a run.

    .venv/bin/python bench/faults.py [--server postgres://postgres@127.0.0.1:5432] [--outage-s 60] [--clients 4]

Everything is the bench's own and on 127.0.0.1: a scratch database `tanhui_bench_faults` on the server (dropped at
the end), a Redis server on a free port without persistence (killed with SIGKILL for the outage and started
again empty, so whatever it held is lost, as a crashed broker loses it), gunicorn serving the API, a Celery worker,
Celery beat and a webhook receiver. Each phase is bounded in time; the bench stops everything it started.

1. Broker outage. `--clients` clients create parties for the whole phase (POST /api/parties/, each write with its
   own Idempotency-Key, repeated with the same key after any error or timeout), and one more starts an
   accounting run every 3 s (POST /api/runs/). A bank subscribes a webhook to every party. After 10 s Redis is
   killed; after `--outage-s` it starts again; the clients go on for 15 s, then the bench waits (at most
   --drain-s) until every run has finished and every webhook has been delivered. Reported: writes answered and
   errors answered, latency before, during and after the outage, duplicates (parties per key, deliveries the
   receiver saw twice), runs finished and their results (one per parcel), and how long after the broker's return
   the last run finished and the last webhook arrived.
2. Worker killed whole. A run over a large raster; once it is running, SIGKILL to the worker's process group
   (the main process and its pool). The bench checks that the run stays `running` and its heartbeat stops, starts
   a new worker, and waits (at most --drain-s) for the run to finish: reported are its execution number (2: taken
   over once), its results (one per parcel, written once) and how long the recovery took.
Then `verify_ledger` over the whole ledger. Prints one line per figure and a JSON summary; docs/reliability.md
("Faults: broker, workers, in-process mode") records a run.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "tanhui_bench_faults"
PYTHON = sys.executable
# The services' settings: short intervals so that the phases take minutes, not hours (README has the defaults).
SERVICE_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "OUTBOX_SWEEP_INTERVAL_S": "5", "OUTBOX_RETRY_AFTER_S": "5",
    "RUN_HEARTBEAT_S": "2", "RUN_STALE_AFTER_S": "15", "RUN_SWEEP_INTERVAL_S": "5",
    "WEBHOOK_RETRY_BASE_S": "2", "WEBHOOK_SWEEP_INTERVAL_S": "20", "WEBHOOK_STRANDED_AFTER_S": "30",
    "BROKER_VISIBILITY_TIMEOUT_S": "600", "LEDGER_CHECKPOINT_INTERVAL_S": "10", "LOG_LEVEL": "INFO",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _wait(predicate, timeout_s: float, pause_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause_s)
    return predicate()


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    median = statistics.median(ordered)
    return f"median {median * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


class Services:
    """The processes the bench starts: Redis, gunicorn, a Celery worker, Celery beat. The worker and beat run under
    a supervisor, as systemd or Kubernetes would run them: one that exits is started again (and counted)."""

    SUPERVISED = ("worker", "beat")

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env, self.processes = folder, env, {}
        self.redis_port, self.web_port = _free_port(), _free_port()
        self.env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        self.restarts: list[tuple[str, int, float]] = []  # (name, exit status, when)
        self.started_at = time.monotonic()
        self._supervising = threading.Event()

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "a")  # noqa: SIM115 (the process keeps it; closed at exit)
        process = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def redis_start(self) -> None:
        self._start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(self.folder)])
        ok = _wait(lambda: self._listening(self.redis_port), 10, 0.05)
        assert ok, "redis did not start"

    def redis_kill(self) -> None:
        self.stop("redis", signal.SIGKILL)

    def worker_start(self) -> None:
        self._start("worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "--concurrency", "2",
                               "--loglevel", "INFO", "-n", f"bench-{time.monotonic_ns()}@%h"])

    def beat_start(self) -> None:
        self._start("beat", [PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                             "--schedule", str(self.folder / "beat-schedule")])

    def worker_kill(self) -> int:
        """SIGKILL to the worker's process group (its main process and pool); the supervisor starts a new one."""
        process = self.processes["worker"]
        os.killpg(process.pid, signal.SIGKILL)
        return process.pid

    def start(self) -> None:
        self.redis_start()
        self._start("web", [PYTHON, "-m", "gunicorn", "config.wsgi:application", "-w", "2", "--threads", "4",
                            "-b", f"127.0.0.1:{self.web_port}", "--timeout", "120"])
        self.worker_start()
        self.beat_start()
        assert _wait(lambda: self._listening(self.web_port), 30), "gunicorn did not start"
        self._supervising.set()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self) -> None:
        while self._supervising.is_set():
            for name in self.SUPERVISED:
                process = self.processes.get(name)
                if process is not None and process.poll() is not None and self._supervising.is_set():
                    self.restarts.append((name, process.returncode, round(time.monotonic() - self.started_at, 1)))
                    print(f"  supervisor: {name} exited ({process.returncode}); started again", flush=True)
                    getattr(self, f"{name}_start")()
            time.sleep(0.5)

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, name: str, sig=signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def stop_all(self) -> None:
        self._supervising.clear()
        time.sleep(0.6)
        for name in list(self.processes):
            self.stop(name)


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 204 and counts each delivery id it sees."""

    def __init__(self):
        self.seen: dict[int, int] = {}
        self.last_at = 0.0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    delivery = int(self.headers["Tanhui-Delivery"])
                    receiver.seen[delivery] = receiver.seen.get(delivery, 0) + 1
                    receiver.last_at = time.monotonic()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Client:
    def __init__(self, port: int, token: str):
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(self, method: str, path: str, body: dict | None = None, *, key: str | None = None,
             timeout_s: float = 30) -> tuple[int, dict | None]:
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(self.base + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None


def _django(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ledger.log.keys import signing_key_load

    signing_key_load()  # the key in VAR_DIR/keys, made once here rather than raced for by the services


def _land(folder: Path, size: int, parcels: int, bureau, *, speckled: bool = False):
    """A raster of `size` × `size` 10 m pixels (west half forest, east half grassland; or, `speckled`, each pixel
    either at random, which is slower to account), `parcels` strip parcels over it, and a pool-table method;
    through the services, as the demo loads its county."""
    import numpy as np
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import Affine

    from accounting.services import method_version_create
    from geo.legends import builtin_legend
    from geo.services import parcel_import, raster_ingest

    if speckled:
        classes = np.where(np.random.default_rng(20260101).random((size, size), np.float32) < 0.5, 2, 4)
        classes = classes.astype(np.uint8)
    else:
        classes = np.full((size, size), 4, np.uint8)
        classes[:, : size // 2] = 2
    path = folder / f"land-{size}{'-speckled' if speckled else ''}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs="EPSG:32648",
                       transform=Affine(10, 0, 452_000, 0, -10, 3_586_000), tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate") as out:
        out.write(classes[np.newaxis])
    raster, _ = raster_ingest(source_path=path, original_name=path.name, epoch=2020, legend=builtin_legend("clcd"),
                              uploaded_by=bureau)
    to_lonlat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
    width_m = size * 10 / parcels
    features = []
    for i in range(parcels):
        x0, x1 = 452_000 + i * width_m + 5, 452_000 + (i + 1) * width_m - 5
        y0, y1 = 3_586_000 - size * 10 + 5, 3_586_000 - 5
        ring = [list(to_lonlat.transform(x, y)) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]
        features.append({"type": "Feature", "properties": {"code": f"S{size}-{i}", "county": "510727"},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    parcel_import(feature_collection={"type": "FeatureCollection", "features": features}, crs="EPSG:4326",
                  allowed_county="510727")
    pools = [{"lucode": 2, "c_above": 120.0, "c_below": 30.0, "c_soil": 80.0, "c_dead": 10.0},
             {"lucode": 4, "c_above": 2.5, "c_below": 10.0, "c_soil": 60.0, "c_dead": 0.0}]
    method, _ = method_version_create(kind="pool_table", parameters={"pools": pools}, created_by=bureau)
    return raster, [f["properties"]["code"] for f in features], method


def _run_body(raster, codes, method) -> dict:
    from geo.models import Parcel

    ids = list(Parcel.objects.filter(county_code="510727", code__in=codes).values_list("id", flat=True))
    return {"method_version": method.id, "raster": raster.id, "parcels": ids}


def _warm_up(clients: list["Client"], runner: "Client") -> float:
    """Wait until a worker answers through the broker and every gunicorn worker has loaded the project (its first
    requests import the URLconf and the API), so that phase 1 measures faults, not a cold start."""
    from celery import current_app

    started = time.monotonic()
    current_app.send_task("tanhui.ping", args=["warm"]).get(timeout=120)
    for n in range(20):
        status, _ = runner.call("GET", "/api/runs/?limit=1")
        assert status == 200, status
        status, _ = clients[n % len(clients)].call("POST", "/api/parties/", {"kind": "household",
                                                                               "name": f"warm-up-{n}"})
        assert status == 201, status
    return time.monotonic() - started


def phase_outage(services: Services, clients: list[Client], runner: Client, run_body: dict, receiver: Receiver,
                 *, outage_s: float, drain_s: float) -> dict:
    """Phase 1: the broker killed 10 s in, back after `outage_s`; writes all along."""
    from accounting.models import AccountingRun, Outbox, ParcelResult
    from ledger.models import Outbox as LedgerOutbox
    from ledger.models import Party, WebhookDelivery

    records: list[tuple[float, float, int, str]] = []  # (started, seconds, status, what)
    lock = threading.Lock()
    stop = threading.Event()
    run_ids: list[int] = []
    started = time.monotonic()

    def write(client: Client, what: str, path: str, body: dict, key: str | None):
        for _ in range(20):  # the same Idempotency-Key each time: a repeat gets the stored answer
            t = time.monotonic()
            try:
                status, answer = client.call("POST", path, body, key=key)
            except OSError as error:
                status, answer = 0, {"error": str(error)}
            with lock:
                records.append((t - started, time.monotonic() - t, status, what))
            if 200 <= status < 300:
                return answer
            time.sleep(0.5)
        return None

    def parties(number: int, client: Client):
        n = 0
        while not stop.is_set():
            key = f"bench-{number}-{n}"
            write(client, "party", "/api/parties/", {"kind": "household", "name": key}, key)
            n += 1

    def runs():
        while not stop.is_set():
            answer = write(runner, "run", "/api/runs/", run_body, None)
            if answer:
                run_ids.append(answer["id"])
            stop.wait(3)

    threads = [threading.Thread(target=parties, args=(i, c)) for i, c in enumerate(clients)]
    threads.append(threading.Thread(target=runs))
    for thread in threads:
        thread.start()
    time.sleep(10)
    down_at = time.monotonic() - started
    services.redis_kill()
    print(f"  broker killed at {down_at:.1f} s", flush=True)
    time.sleep(outage_s)
    services.redis_start()
    up_at, up_wall = time.monotonic() - started, time.time()
    print(f"  broker back at {up_at:.1f} s", flush=True)
    time.sleep(15)
    stop.set()
    for thread in threads:
        thread.join()
    end_writes = time.monotonic() - started

    def settled() -> bool:
        runs_done = not AccountingRun.objects.filter(id__in=run_ids).exclude(
            status__in=[AccountingRun.SUCCEEDED, AccountingRun.FAILED]).exists()
        hooks_done = not WebhookDelivery.objects.exclude(status=WebhookDelivery.DELIVERED).exists()
        return runs_done and hooks_done

    settled_ok = _wait(settled, drain_s, 1.0)
    last_run = max(AccountingRun.objects.filter(id__in=run_ids).values_list("finished_at", flat=True),
                   default=None, key=lambda t: t.timestamp() if t else 0)
    keys = {name for name in Party.objects.values_list("name", flat=True) if name.startswith("bench-")}
    party_rows = Party.objects.filter(name__startswith="bench-").count()
    answered = [r for r in records if 200 <= r[2] < 300]
    errors = [r for r in records if not 200 <= r[2] < 300]
    windows = {"before": (0, down_at), "during": (down_at, up_at), "after": (up_at, end_writes)}
    latency = {name: _percentiles([r[1] for r in answered if lo <= r[0] < hi]) for name, (lo, hi) in windows.items()}
    runs = list(AccountingRun.objects.filter(id__in=run_ids))
    results_ok = all(ParcelResult.objects.filter(run=run).count() == run.parcels_total for run in runs
                     if run.status == AccountingRun.SUCCEEDED)
    deliveries = WebhookDelivery.objects.count()
    summary = {
        "outage_s": round(up_at - down_at, 1), "writes_answered": len(answered),
        "writes_answered_during_outage": sum(1 for r in answered if down_at <= r[0] < up_at),
        "errors_answered": len(errors), "error_statuses": sorted({r[2] for r in errors}),
        "latency": latency,
        "parties": party_rows, "party_keys": len(keys), "duplicate_parties": party_rows - len(keys),
        "runs_started": len(run_ids), "runs_started_during_outage": sum(
            1 for r in answered if r[3] == "run" and down_at <= r[0] < up_at),
        "runs_succeeded": sum(r.status == AccountingRun.SUCCEEDED for r in runs),
        "runs_not_finished": sum(r.status not in (AccountingRun.SUCCEEDED, AccountingRun.FAILED) for r in runs),
        "runs_taken_over": sum(r.attempt > 1 for r in runs), "results_one_per_parcel": results_ok,
        "webhook_deliveries": deliveries, "webhooks_received": len(receiver.seen),
        "webhooks_received_twice": sum(1 for count in receiver.seen.values() if count > 1),
        "webhooks_not_delivered": WebhookDelivery.objects.exclude(status=WebhookDelivery.DELIVERED).count(),
        "outbox_unsent": Outbox.objects.filter(sent_at__isnull=True).count()
        + LedgerOutbox.objects.filter(sent_at__isnull=True).count(),
        "settled": settled_ok,
        "restarted_by_supervisor": [f"{name} (exit {code}) at {at} s" for name, code, at in services.restarts],
        "last_run_finished_after_broker_back_s": round(last_run.timestamp() - up_wall, 1) if last_run else None,
        "last_webhook_after_broker_back_s": round(receiver.last_at - started - up_at, 1),
    }
    return summary


def phase_kill(services: Services, runner: Client, run_body: dict, *, drain_s: float) -> dict:
    """Phase 2: SIGKILL to the worker's process group while a run is running; a new worker; the run finishes."""
    from accounting.models import AccountingRun, ParcelResult

    status, answer = runner.call("POST", "/api/runs/", run_body)
    assert status == 202, (status, answer)
    run_id = answer["id"]
    running = _wait(lambda: AccountingRun.objects.filter(id=run_id, status="running").exists(), 120, 0.05)
    assert running, AccountingRun.objects.get(id=run_id).status
    killed_pid = services.worker_kill()
    killed_at = time.monotonic()
    before = AccountingRun.objects.get(id=run_id)
    print(f"  worker killed with run {run_id} running ({before.parcels_done}/{before.parcels_total} parcels)",
          flush=True)
    time.sleep(1)
    first = AccountingRun.objects.get(id=run_id)
    time.sleep(4)
    silent = AccountingRun.objects.get(id=run_id)
    results_after_kill = ParcelResult.objects.filter(run_id=run_id).count()
    assert services.processes["worker"].pid != killed_pid, "the supervisor did not start a new worker"
    done = _wait(lambda: AccountingRun.objects.filter(id=run_id, status__in=["succeeded", "failed"]).exists(),
                 drain_s, 0.5)
    run = AccountingRun.objects.get(id=run_id)
    return {
        "run": run_id, "parcels": run.parcels_total, "status_after_kill": silent.status,
        "heartbeat_stopped": silent.heartbeat_at == first.heartbeat_at,
        "results_after_kill": results_after_kill,
        "finished": done, "status": run.status, "execution": run.attempt,
        "results": ParcelResult.objects.filter(run_id=run_id).count(),
        "recovered_after_s": round(time.monotonic() - killed_at, 1) if done else None,
        "compute_s": round((run.finished_at - run.started_at).total_seconds(), 1) if done else None,
        "restarted_by_supervisor": [f"{name} (exit {code}) at {at} s" for name, code, at in services.restarts],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--outage-s", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--drain-s", type=float, default=180)
    parser.add_argument("--kill-raster-px", type=int, default=8000, help="side of the raster of the killed run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs) and database")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tanhui-bench-faults-"))
    env = dict(os.environ, **SERVICE_ENV, DATABASE_URL=f"{args.server}/{DATABASE}", TANHUI_VAR_DIR=str(folder / "var"),
               MEDIA_ROOT=str(folder / "media"))
    for name in ("TEST_DATABASE_NAME", "CELERY_RESULT_BACKEND", "LEDGER_SIGNING_KEY", "LEDGER_SIGNING_KEY_FILE"):
        env.pop(name, None)
    _admin(args.server, f"DROP DATABASE IF EXISTS {DATABASE}")
    _admin(args.server, f"CREATE DATABASE {DATABASE}")
    services = Services(folder, env)
    status = 1
    try:
        _django(dict(services.env))
        from geo.accounts import api_user_create
        from ledger.webhooks.services import webhook_subscribe

        bureau, bureau_token = api_user_create(username="bench-bureau", role="bureau", county_code="510727")
        bank, _ = api_user_create(username="bench-bank", role="bank")
        receiver = Receiver()
        webhook_subscribe(owner=bank, url=receiver.url, event_kinds=["party.create"])
        small = _land(folder, 1000, 10, bureau)
        large = _land(folder, args.kill_raster_px, 40, bureau, speckled=True)
        services.start()
        clients = [Client(services.web_port, bureau_token) for _ in range(args.clients)]
        runner = Client(services.web_port, bureau_token)
        warm_s = _warm_up(clients, runner)
        print(f"services up and warm in {warm_s:.1f} s", flush=True)
        print(f"phase 1: broker down {args.outage_s:.0f} s, {args.clients} writing clients and one starting runs",
              flush=True)
        outage = phase_outage(services, clients, runner, _run_body(*small), receiver, outage_s=args.outage_s,
                              drain_s=args.drain_s)
        for name, value in outage.items():
            print(f"  {name}: {value}")
        print("phase 2: worker killed whole mid-run", flush=True)
        kill = phase_kill(services, runner, _run_body(*large), drain_s=args.drain_s)
        for name, value in kill.items():
            print(f"  {name}: {value}")
        verify = subprocess.run([PYTHON, "manage.py", "verify_ledger"], cwd=ROOT, env=services.env,
                                capture_output=True, text=True)
        print(f"verify_ledger: exit {verify.returncode}: {verify.stdout.strip().splitlines()[-1:]}")
        ok = (outage["errors_answered"] == 0 and outage["duplicate_parties"] == 0 and outage["runs_not_finished"] == 0
              and outage["webhooks_received_twice"] == 0 and outage["webhooks_not_delivered"] == 0
              and outage["results_one_per_parcel"] and kill["status"] == "succeeded"
              and kill["results"] == kill["parcels"] and verify.returncode == 0)
        print(json.dumps({"outage": outage, "kill": kill, "verify_ledger": verify.returncode, "ok": ok}))
        status = 0 if ok else 1
    finally:
        services.stop_all()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _admin(args.server, f"DROP DATABASE IF EXISTS {DATABASE}")
            subprocess.run(["rm", "-rf", str(folder)], check=False)
        else:
            print(f"kept {folder} and database {DATABASE}")
    return status


if __name__ == "__main__":
    sys.exit(main())
