"""Gunicorn for Tanhui on one machine: `TANHUI_ENV=production gunicorn -c gunicorn.conf.py config.wsgi`.

Sized for the project's machine, 2 cores, and measured there (docs/performance.md, "Load"): the requests are Python
and hold the GIL while they compute, so parallel work needs processes, one per core plus one; within each, threads
overlap the waits on PostgreSQL (each request makes a few round trips, and the wait until what it read is on disk).
Each environment variable below overrides its default.

- GUNICORN_BIND (0.0.0.0:8000): where to listen; behind the TLS proxy, usually its side of loopback.
- WEB_CONCURRENCY (cores + 1): worker processes. GUNICORN_THREADS (4): threads per worker (gthread), so
  workers × threads requests run at once and as many database connections stay open.
- GUNICORN_TIMEOUT (120 s): a worker whose main loop is silent this long is killed and replaced. With gthread
  a long request (a large raster upload) does not silence it; a worker stuck in C code does.
- GUNICORN_MAX_REQUESTS (2000, with 10 % jitter): a worker is replaced, gracefully, after this many requests, so
  that memory that GDAL and numpy keep does not grow without bound.
- CONN_MAX_AGE (60 s, read by the settings): database connections are kept between requests, one per thread,
  instead of a new connection (several milliseconds) for every request.
"""

import multiprocessing
import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


try:
    _cores = len(os.sched_getaffinity(0))  # the cores this process may use (a container's share)
except AttributeError:
    _cores = multiprocessing.cpu_count()

bind = os.environ.get("GUNICORN_BIND") or "0.0.0.0:8000"
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", _cores + 1)
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = 30  # on restart or max_requests, requests in flight get this long to finish
keepalive = 5  # seconds an idle keep-alive connection from the proxy stays open
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10  # so that the workers are not all replaced at once
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"  # the workers' heartbeat files: in memory, so a slow disk cannot time them out
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # "-" for stdout; off by default (the proxy logs)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL") or "info"

os.environ.setdefault("CONN_MAX_AGE", "60")  # read by config.settings.base when the workers load the app
