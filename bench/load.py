"""Loopback load test: bank and exchange clients against gunicorn on PostgreSQL, with Redis and a Celery worker.

    .venv/bin/python bench/load.py                        # both mixes, 50 clients, 3 runs of 60 s each
    .venv/bin/python bench/load.py --mix read --runs 1 --duration 20 --think-ms 0   # saturation, one short run

Everything runs on this machine and talks over 127.0.0.1 only (the bench refuses any other address), and every
part stops by itself: each run lasts --duration seconds and at most --max-requests requests, each request at most
30 s. The bench

1. creates a scratch PostgreSQL database (--database, default `tanhui_load`, dropped first if it exists), migrates
   it and fills it through the registry's services: --assets confirmed and valued assets (a quarter of them
   pledged), banks, exchanges and holders with API users, and signed checkpoints along the way;
2. flushes Redis db 8 (--redis) and starts, as the README's production section does, one Celery worker on it and
   gunicorn with gunicorn.conf.py and the production settings on a free loopback port (TLS is the proxy's: the
   clients send X-Forwarded-Proto: https, as it would);
3. runs the mixes, each --runs times: `read`, bank clients reading what a bank reads (assets, pages of 50, asset
   details, pledge bundles, the latest checkpoint, checkpoints by size, inclusion and consistency proofs, its own
   pledges); `mixed`, the same reads by bank and exchange clients with writes among them (banks pledge and release,
   exchanges settle transfers), every write with If-Match (and a transfer with expected_holder) and an
   Idempotency-Key, as an integration that retries would send them;
4. after the mixed runs, verifies a sample of the bundles it downloaded with the offline verifier, and runs
   `manage.py verify_ledger` on the database: it must say the ledger is clean;
5. stops the worker and gunicorn and drops the database (unless --keep).

Clients are closed loops, one keep-alive connection each: a request, its answer, then a think time drawn uniformly
from --think-ms (default 500-1500: a bank's integration, not a flood; 0 makes a saturation test). A client that
holds an ETag for a URL sends If-None-Match, as an HTTP cache would, but never skips a request: every operation is
a request on the wire. For each operation and in all it prints the answers by class, p50/p95/p99 and max latency
(ms, until the whole body is read) and requests per second; then the medians over the runs.

Answer classes: `ok` (2xx, 304), `refused` (the answers a correct client expects under contention and counts as
such: 409 and 412 on writes, 409 checkpoint-due on a bundle of an asset changed since the last checkpoint), and
`errors`: anything else, 5xx, timeouts and broken connections. The bench shares the machine with the server, so
its own CPU time is printed beside the server's. docs/performance.md ("Load") records a run.
"""

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
COUNTY = "510727"
REQUEST_TIMEOUT_S = 30


def loopback_only(url: str) -> str:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"refusing {url}: the load test talks to loopback (127.0.0.1) only, not {host}")
    return url


# --- 1. the database ---------------------------------------------------------------------------------------------


def _admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _uscc(n: int) -> str:
    from ledger.registry.uscc import uscc_check_character

    first17 = f"9151070{n:010d}"
    return first17 + uscc_check_character(first17)


def seed(*, server: str, database: str, var_dir: Path, assets: int, banks: int, exchanges: int) -> dict:
    """Create and fill the database; return what the clients need (tokens, parties, asset codes)."""
    _admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _admin(server, f'CREATE DATABASE "{database}"')
    from ledger.core.note import generate_signer

    key_file = var_dir / "keys/ledger.skey"  # as production wants it: one key, made once, in a file
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(generate_signer("tanhui.local/registry").skey)
    key_file.chmod(0o600)
    os.environ.update({"DATABASE_URL": f"{server}/{database}", "DJANGO_SETTINGS_MODULE": "config.settings.base",
                       "TANHUI_VAR_DIR": str(var_dir), "LEDGER_SIGNING_KEY_FILE": str(key_file),
                       "LEDGER_CHECKPOINT_INTERVAL_S": "3600", "MEDIA_ROOT": str(var_dir / "media")})
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TANHUI_ENV"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connections

    from accounting.models import AccountingRun, MethodVersion, ParcelResult
    from geo.accounts import api_user_create
    from geo.models import Raster
    from geo.services import parcel_import
    from ledger.core.canonical_json import canonical_json
    from ledger.log.keys import signing_key_load
    from ledger.log.services import checkpoint_sign_latest
    from ledger.registry import services as registry

    call_command("migrate", verbosity=0)
    signer = signing_key_load()  # the server signs with the same key file
    _, bureau_token = api_user_create(username="load-bureau", role="bureau", county_code=COUNTY)
    bank_users = [api_user_create(username=f"load-bank-{i}", role="bank") for i in range(banks)]
    exchange_users = [api_user_create(username=f"load-exchange-{i}", role="exchange") for i in range(exchanges)]
    bank_parties = [registry.party_create(kind="bank", name=f"Bank {i}", uscc=_uscc(i), user=user)
                    for i, (user, _) in enumerate(bank_users)]
    for i, (user, _) in enumerate(exchange_users):
        registry.party_create(kind="exchange", name=f"Exchange {i}", uscc=_uscc(1000 + i), user=user)
    holders = [registry.party_create(kind="household" if i % 2 else "individual", name=f"holder {i}")
               for i in range(20)]

    features = []
    for i in range(assets):  # 0.01° boxes on a grid near Pingwu, none overlapping
        lon, lat = 104.0 + (i % 40) * 0.02, 32.2 + (i // 40) * 0.02
        features.append({"type": "Feature", "properties": {"code": f"LOAD-{i:04d}", "county": COUNTY},
                         "geometry": {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.01, lat],
                                                                          [lon + 0.01, lat + 0.01],
                                                                          [lon, lat + 0.01], [lon, lat]]]}})
    parcels = parcel_import(feature_collection={"type": "FeatureCollection", "features": features},
                            allowed_county=COUNTY)
    raster = Raster.objects.create(sha256="ab" * 32, file="bench.tif", original_name="bench.tif", size_bytes=1,
                                   epoch=2025, legend={"name": "bench"}, width=1, height=1, dtype="uint8",
                                   crs_wkt="", transform=[10, 0, 0, 0, -10, 0], class_pixel_counts={})
    method_spec = {"kind": "pool_table", "parameters": {"pools": [{"name": "agb", "density_t_c_per_ha": 100.0}]}}
    method = MethodVersion.objects.create(parameters_sha256=hashlib.sha256(canonical_json(method_spec)).hexdigest(),
                                          **method_spec)  # the hash a bundle's verifier recomputes
    run = AccountingRun.objects.create(method_version=method, raster=raster, status=AccountingRun.SUCCEEDED,
                                       input_raster_sha256=[raster.sha256], method_sha256=method.parameters_sha256,
                                       code_version="bench")
    run.parcels.add(*parcels)
    ParcelResult.objects.bulk_create([ParcelResult(run=run, parcel=p, area_ha=p.area_ha, stock_t_c=1000.0,
                                                   stock_co2e_t=1000.0 * 44 / 12, stock_ci95_low_t_c=800.0,
                                                   stock_ci95_high_t_c=1200.0, figures={}) for p in parcels])
    codes = []
    for i, parcel in enumerate(parcels):
        asset = registry.asset_register(parcel=parcel, rights_type="forest_land_use", holder=holders[i % 20],
                                        evidence=[], county_code=COUNTY)
        registry.asset_confirm(asset=asset, county_code=COUNTY)
        registry.asset_value(asset=asset, run=run, county_code=COUNTY, price_per_t_co2e=Decimal("80"))
        if i % 4 == 3:
            registry.pledge_create(asset=asset, pledgee=bank_parties[i % banks], amount=Decimal("20000"),
                                   currency="CNY", term_months=36)
        codes.append(asset.code)
        if i % 25 == 24:
            checkpoint_sign_latest(force=True)
    checkpoint_sign_latest(force=True)
    connections.close_all()
    # The first half of the assets trade on the exchanges, the second half is pledged by the banks.
    half = assets // 2
    return {"bureau": bureau_token, "banks": [(token, p.id) for (_, token), p in zip(bank_users, bank_parties,
                                                                                      strict=True)],
            "exchanges": [token for _, token in exchange_users], "holders": [h.id for h in holders],
            "traded": codes[:half], "pledged": codes[half:], "assets": codes, "vkey": signer.verifier.vkey}


# --- 2. the services ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Services:
    base_url: str
    env: dict
    processes: list = field(default_factory=list)
    logs: Path | None = None

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def server_cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the gunicorn master and its workers, from /proc."""
        master = self.processes[1].pid
        total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == master or ppid == master:
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total


def start(*, server: str, database: str, redis_url: str, var_dir: Path, checkpoint_interval_s: int) -> Services:
    import redis

    loopback_only(redis_url)
    redis.Redis.from_url(redis_url).flushdb()
    port = _free_port()
    env = {**os.environ, "TANHUI_ENV": "production", "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "DATABASE_URL": f"{server}/{database}", "CELERY_BROKER_URL": redis_url,
           "LEDGER_SIGNING_KEY_FILE": str(var_dir / "keys/ledger.skey"), "TANHUI_VAR_DIR": str(var_dir),
           "MEDIA_ROOT": str(var_dir / "media"), "LEDGER_CHECKPOINT_INTERVAL_S": str(checkpoint_interval_s),
           "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto", "LOG_LEVEL": "WARNING", "GUNICORN_LOG_LEVEL": "warning",
           "GUNICORN_BIND": f"127.0.0.1:{port}"}
    logs = var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    services = Services(base_url=f"http://127.0.0.1:{port}", env=env, logs=logs)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
                               "--loglevel", "WARNING", "--logfile", str(logs / "worker.log")], cwd=ROOT, env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    services.processes.append(worker)
    with open(logs / "gunicorn.log", "wb") as log:
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                                     "config.wsgi"], cwd=ROOT, env=env, start_new_session=True, stdout=log,
                                    stderr=subprocess.STDOUT)
    services.processes.append(gunicorn)
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(services.base_url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or gunicorn.poll() is not None:
            services.stop()
            raise SystemExit(f"gunicorn did not become healthy; see {logs / 'gunicorn.log'}")
        time.sleep(0.3)
    return services


# --- 3. the clients ----------------------------------------------------------------------------------------------

OK, REFUSED, ERROR = "ok", "refused", "errors"


@dataclass
class Sample:
    op: str
    status: int
    ms: float
    kind: str  # OK, REFUSED or ERROR
    not_modified: bool = False


@dataclass
class Shared:
    """What every client knows of the ledger and the registry, updated from the answers."""

    manifest: dict
    sizes: list[int]  # signed checkpoint sizes, ascending
    bundles: list = field(default_factory=list)  # a sample of downloaded bundle bodies, to verify afterwards


READS = {  # operation: weight
    "assets_list": 15, "asset_detail": 25, "bundle": 15, "checkpoint_latest": 10, "checkpoint_by_size": 5,
    "inclusion_proof": 12, "consistency_proof": 10, "pledges_list": 8,
}
MIXED_WRITES = {"bank": {"pledge": 10, "release": 8}, "exchange": {"transfer": 15}}


class Client:
    def __init__(self, *, index: int, role: str, token: str, party: int | None, session, base_url: str,
                 shared: Shared, rng: random.Random, mix: str, conditional: bool):
        self.index, self.role, self.party, self.session, self.base = index, role, party, session, base_url
        self.shared, self.rng, self.mix, self.conditional = shared, rng, mix, conditional
        self.headers = {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https",
                        "Accept": "application/json"}
        self.validators: dict[str, tuple[str, bytes]] = {}  # url: (etag, body), as an HTTP cache keeps them
        self.my_pledges: list[tuple[int, str]] = []  # (pledge id, asset code) this bank made and has not released
        self.samples: list[Sample] = []
        ops = dict(READS)
        if mix == "mixed":
            ops.update(MIXED_WRITES[role])
        self.ops, self.weights = list(ops), list(ops.values())

    async def request(self, op: str, method: str, path: str, *, body=None, headers=None,
                      refused=(), ok=(200,)) -> tuple[int, bytes, dict]:
        url = self.base + path
        sent = {**self.headers, **(headers or {})}
        cached = self.validators.get(path) if method == "GET" and self.conditional else None
        if cached:
            sent["If-None-Match"] = cached[0]
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, json=body, headers=sent) as answer:
                content = await answer.read()
                status, answer_headers = answer.status, answer.headers
        except Exception as error:  # a timeout, a refused or broken connection: an error sample, the client goes on
            self.samples.append(Sample(op, 0, (time.perf_counter() - started) * 1000, ERROR))
            return 0, repr(error).encode(), {}
        ms = (time.perf_counter() - started) * 1000
        not_modified = status == 304 and cached is not None
        if not_modified:
            content = cached[1]
        elif method == "GET" and status == 200 and "ETag" in answer_headers:
            self.validators[path] = (answer_headers["ETag"], content)
        kind = OK if status in ok or not_modified else REFUSED if status in refused else ERROR
        self.samples.append(Sample(op, status, ms, kind, not_modified))
        return (200 if not_modified else status), content, dict(answer_headers)

    # --- reads ---

    def _asset(self, traded: bool | None = None) -> str:
        manifest = self.shared.manifest
        pool = manifest["assets"] if traded is None else manifest["traded"] if traded else manifest["pledged"]
        return self.rng.choice(pool)

    async def assets_list(self):
        offset = self.rng.randrange(0, max(1, len(self.shared.manifest["assets"]) - 50))
        query = "&status=pledged" if self.rng.random() < 0.2 else f"&offset={offset}"
        await self.request("assets_list", "GET", f"/api/assets/?limit=50{query}")

    async def asset_detail(self, code: str | None = None) -> dict | None:
        path = f"/api/assets/{code or self._asset()}/"
        status, content, headers = await self.request("asset_detail", "GET", path)
        if status != 200:
            return None
        return {"etag": headers.get("ETag") or self.validators[path][0], **json.loads(content)}

    async def bundle(self):
        status, content, _ = await self.request("bundle", "GET", f"/api/assets/{self._asset()}/bundle/",
                                                refused=(409,))
        if status == 200 and len(self.shared.bundles) < 40 and self.rng.random() < 0.2:
            self.shared.bundles.append(content)

    async def checkpoint_latest(self):
        status, content, _ = await self.request("checkpoint_latest", "GET", "/api/ledger/checkpoint/")
        if status == 200:
            size = json.loads(content)["tree_size"]
            if size > self.shared.sizes[-1]:
                self.shared.sizes.append(size)

    async def checkpoint_by_size(self):
        await self.request("checkpoint_by_size", "GET",
                           f"/api/ledger/checkpoints/?size={self.rng.choice(self.shared.sizes)}")

    async def inclusion_proof(self):
        size = self.rng.choice(self.shared.sizes)
        await self.request("inclusion_proof", "GET",
                           f"/api/ledger/entries/{self.rng.randrange(size)}/proof/?tree_size={size}")

    async def consistency_proof(self):
        first, second = sorted(self.rng.sample(self.shared.sizes, 2))
        await self.request("consistency_proof", "GET", f"/api/ledger/consistency/?first={first}&second={second}")

    async def pledges_list(self):
        query = "pledgee=me" if self.role == "bank" else "status=active"
        await self.request("pledges_list", "GET", f"/api/pledges/?{query}&limit=50")

    # --- writes: read the asset first (its ETag), then change it against that state ---

    def _write_headers(self, etag: str) -> dict:
        return {"If-Match": etag, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}

    async def pledge(self):
        code = self._asset(traded=False)
        asset = await self.asset_detail(code)
        if asset is None:
            return
        status, content, _ = await self.request(
            "pledge", "POST", f"/api/assets/{code}/pledges/", ok=(201,), refused=(409, 412),
            body={"amount": "1000.00", "currency": "CNY", "term_months": 12},
            headers=self._write_headers(asset["etag"]))
        if status == 201:
            self.my_pledges.append((json.loads(content)["id"], code))

    async def release(self):
        if not self.my_pledges:
            return await self.pledge()
        pledge_id, code = self.my_pledges[0]
        asset = await self.asset_detail(code)
        if asset is None:
            return None
        status, _, _ = await self.request("release", "POST", f"/api/pledges/{pledge_id}/release/",
                                          ok=(200,), refused=(409, 412), headers=self._write_headers(asset["etag"]))
        if status in (200, 409):  # released, or no longer active: either way not ours to release again
            self.my_pledges.pop(0)
        return None

    async def transfer(self):
        code = self._asset(traded=True)
        asset = await self.asset_detail(code)
        if asset is None:
            return
        holder = asset["holder"]["id"]
        to_holder = self.rng.choice([h for h in self.shared.manifest["holders"] if h != holder])
        await self.request("transfer", "POST", f"/api/assets/{code}/transfers/", ok=(201,), refused=(409, 412),
                           body={"to_holder": to_holder, "expected_holder": holder,
                                 "trade_ref": f"T-{self.index}-{self.rng.randrange(10**9)}"},
                           headers=self._write_headers(asset["etag"]))

    async def run(self, *, deadline: float, budget: list[int], think_ms: tuple[int, int]):
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            op = self.rng.choices(self.ops, self.weights)[0]
            await getattr(self, op)()
            if think_ms[1] > 0:
                await asyncio.sleep(self.rng.uniform(*think_ms) / 1000)


async def _load(*, services: Services, shared: Shared, mix: str, clients: int, duration_s: float,
                max_requests: int, think_ms: tuple[int, int], seed_value: int, conditional: bool) -> list[Sample]:
    import aiohttp

    manifest = shared.manifest
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    sessions, crowd = [], []
    rng = random.Random(seed_value)
    for index in range(clients):
        # read: bank clients only; mixed: one client in five is an exchange's
        exchange = mix == "mixed" and index % 5 == 4
        if exchange:
            role, token, party = "exchange", manifest["exchanges"][index % len(manifest["exchanges"])], None
        else:
            role, (token, party) = "bank", manifest["banks"][index % len(manifest["banks"])]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
        sessions.append(session)
        crowd.append(Client(index=index, role=role, token=token, party=party, session=session,
                            base_url=services.base_url, shared=shared, rng=random.Random(rng.random()), mix=mix,
                            conditional=conditional))
    try:
        # warm-up, not counted: every client opens its connection, every server thread its database connection
        await asyncio.gather(*(c.checkpoint_latest() for c in crowd))
        for c in crowd:
            c.samples.clear()
        deadline = time.monotonic() + duration_s
        budget = [max_requests]
        await asyncio.gather(*(c.run(deadline=deadline, budget=budget, think_ms=think_ms) for c in crowd))
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return [s for c in crowd for s in c.samples]


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank q-th percentile of an ascending list."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarize(samples: list[Sample], elapsed_s: float) -> dict:
    def figures(group: list[Sample]) -> dict:
        ordered = sorted(s.ms for s in group)
        return {"requests": len(group), OK: sum(s.kind == OK for s in group),
                "not_modified": sum(s.not_modified for s in group),
                REFUSED: sum(s.kind == REFUSED for s in group), ERROR: sum(s.kind == ERROR for s in group),
                "p50_ms": percentile(ordered, 50), "p95_ms": percentile(ordered, 95),
                "p99_ms": percentile(ordered, 99), "max_ms": ordered[-1] if ordered else float("nan"),
                "rps": len(group) / elapsed_s}

    ops = sorted({s.op for s in samples})
    errors = sorted({(s.op, s.status) for s in samples if s.kind == ERROR})
    return {"all": figures(samples), "ops": {op: figures([s for s in samples if s.op == op]) for op in ops},
            "error_statuses": [f"{op} {status}" for op, status in errors]}


def print_summary(title: str, summary: dict) -> None:
    print(f"\n{title}")
    print(f"{'operation':<20}{'requests':>9}{'ok':>8}{'(304)':>7}{'refused':>8}{'errors':>7}"
          f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>8}")
    for name, row in [*summary["ops"].items(), ("ALL", summary["all"])]:
        print(f"{name:<20}{row['requests']:>9}{row[OK]:>8}{row['not_modified']:>7}{row[REFUSED]:>8}"
              f"{row[ERROR]:>7}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}"
              f"{row['rps']:>8.1f}")
    if summary["error_statuses"]:
        print("errors:", ", ".join(summary["error_statuses"]))
    extra = summary.get("cpu")
    if extra:
        print(f"CPU seconds: server {extra['server_s']:.1f}, this client {extra['client_s']:.1f} over "
              f"{extra['elapsed_s']:.1f} s on {os.cpu_count()} cores; load average before {extra['load_before']}")


def run_once(args, services: Services, shared: Shared, mix: str, index: int) -> dict:
    client_before = time.process_time()
    server_before = services.server_cpu_s()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    started = time.monotonic()
    samples = asyncio.run(_load(services=services, shared=shared, mix=mix, clients=args.clients,
                                duration_s=args.duration, max_requests=args.max_requests,
                                think_ms=tuple(args.think_ms), seed_value=args.seed + index,
                                conditional=not args.no_conditional))
    elapsed = time.monotonic() - started
    summary = summarize(samples, elapsed)
    summary["cpu"] = {"server_s": services.server_cpu_s() - server_before,
                      "client_s": time.process_time() - client_before, "elapsed_s": elapsed,
                      "load_before": load_before}
    print_summary(f"== {mix} mix, run {index + 1}: {args.clients} clients, {args.duration:g} s, think "
                  f"{args.think_ms[0]}-{args.think_ms[1]} ms", summary)
    return summary


def medians(mix: str, summaries: list[dict]) -> dict:
    keys = ("p50_ms", "p95_ms", "p99_ms", "rps")
    out = {"all": {k: statistics.median(s["all"][k] for s in summaries) for k in keys}}
    out["all"][ERROR] = statistics.median(s["all"][ERROR] for s in summaries)
    out["all"][REFUSED] = statistics.median(s["all"][REFUSED] for s in summaries)
    ops = sorted({op for s in summaries for op in s["ops"]})
    out["ops"] = {op: {k: statistics.median(s["ops"][op][k] for s in summaries if op in s["ops"]) for k in keys}
                  for op in ops}
    print(f"\n== {mix} mix: medians of {len(summaries)} runs")
    print(f"{'operation':<20}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}")
    for name, row in [*out["ops"].items(), ("ALL", out["all"])]:
        print(f"{name:<20}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['rps']:>8.1f}")
    print(f"errors per run: {[s['all'][ERROR] for s in summaries]}; refused per run: "
          f"{[s['all'][REFUSED] for s in summaries]}")
    return out


# --- 4. after the mixed load: the ledger is clean -----------------------------------------------------------------


def verify_after(shared: Shared, services: Services) -> bool:
    from ledger.verifier.checks import load_bundle, verify_bundle
    from ledger.verifier.errors import BundleInvalidError

    invalid = 0
    for body in shared.bundles:
        try:
            verify_bundle(load_bundle(body), trusted_keys=[shared.manifest["vkey"]])
        except BundleInvalidError as error:
            invalid += 1
            print(f"bundle INVALID: {error}")
    print(f"\nbundles downloaded during the load and verified offline: {len(shared.bundles) - invalid} of "
          f"{len(shared.bundles)} valid")
    env = {**services.env, "TANHUI_ENV": "", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "manage.py", "verify_ledger"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    print(f"manage.py verify_ledger: exit {done.returncode} in {time.monotonic() - started:.1f} s")
    print("  " + (done.stdout + done.stderr).strip().replace("\n", "\n  "))
    return done.returncode == 0 and invalid == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL, loopback")
    parser.add_argument("--database", default="tanhui_load")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8", help="the broker (flushed), loopback")
    parser.add_argument("--mix", default="read,mixed", help="read, mixed, or both: read,mixed")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-requests", type=int, default=100_000, help="per run, whatever the duration")
    parser.add_argument("--think-ms", type=int, nargs=2, default=[500, 1500], metavar=("MIN", "MAX"))
    parser.add_argument("--no-conditional", action="store_true", help="never send If-None-Match")
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--banks", type=int, default=10)
    parser.add_argument("--exchanges", type=int, default=5)
    parser.add_argument("--checkpoint-interval", type=int, default=10, help="LEDGER_CHECKPOINT_INTERVAL_S")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", type=Path, help="also write every summary here")
    args = parser.parse_args()
    loopback_only(args.server)
    mixes = [m.strip() for m in args.mix.split(",") if m.strip()]
    if not set(mixes) <= {"read", "mixed"}:
        parser.error("--mix takes read, mixed or read,mixed")

    var_dir = Path(tempfile.mkdtemp(prefix="tanhui-load-"))
    started = time.monotonic()
    manifest = seed(server=args.server, database=args.database, var_dir=var_dir, assets=args.assets,
                    banks=args.banks, exchanges=args.exchanges)
    from ledger.log.models import Checkpoint

    sizes = sorted(Checkpoint.objects.values_list("tree_size", flat=True))
    print(f"seeded {args.database}: {len(manifest['assets'])} assets, {sizes[-1]} entries, {len(sizes)} checkpoints "
          f"in {time.monotonic() - started:.0f} s")
    services = start(server=args.server, database=args.database, redis_url=args.redis, var_dir=var_dir,
                     checkpoint_interval_s=args.checkpoint_interval)
    results, clean = {}, True
    try:
        shared = Shared(manifest=manifest, sizes=sizes)
        for mix in mixes:
            summaries = [run_once(args, services, shared, mix, i) for i in range(args.runs)]
            results[mix] = {"runs": summaries, "medians": medians(mix, summaries)}
        if "mixed" in mixes:
            clean = verify_after(shared, services)
    finally:
        services.stop()
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _admin(args.server, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    errors = sum(s["all"][ERROR] for mix in results.values() for s in mix["runs"])
    print(f"\nerrors in all runs: {errors}; ledger clean after the mixed load: {clean if 'mixed' in mixes else 'n/a'}")
    return 0 if errors == 0 and clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
