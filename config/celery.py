"""The Celery app. Start workers with `celery -A config worker` and the scheduler with `celery -A config beat`.

Without a broker (CELERY_BROKER_URL unset, the embedded default) Celery runs a task eagerly, in the caller: inside
the request that published it, with its countdown ignored. Tanhui's task class does not let that happen. In that
mode every task published goes to the process's in-process runner (`InProcessRunner`), which runs it on a thread
of its own at its due time (countdown or eta) and also plays Celery beat's part: it runs the CELERY_BEAT_SCHEDULE
entries at their intervals, and all of them once when it starts. The web process starts its runner at its first
request, and any process at the first task it publishes. INPROCESS_TASKS = "inline" (the test settings) keeps
Celery's eager behaviour instead: the task runs at once, in the caller.

Start-up with a broker: a web process sends what its outboxes hold at its first request (on a thread, so that a
broker that is down delays nothing), and a worker sends the outbox and stale-run sweeps when it is ready
(OUTBOX_SEND_AT_START; off in the tests).
"""

import heapq
import itertools
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from celery import Celery, Task
from celery.schedules import schedule as celery_schedule
from celery.signals import worker_ready
from celery.utils import uuid
from django.conf import settings
from django.core.signals import request_started
from django.db import connections
from django.utils import timezone

from config.settings import settings_module_select

settings_module_select()  # DJANGO_SETTINGS_MODULE, else TANHUI_ENV (production or development)
logger = logging.getLogger(__name__)

# What a process sends when it starts: the outboxes (both doors), and the stale-run sweep (workers).
OUTBOX_TASKS = ("accounting.outbox_send_pending", "ledger.outbox_send_pending")
WORKER_START_TASKS = (*OUTBOX_TASKS, "accounting.runs_requeue_stale")


@dataclass(order=True)
class _Due:
    at: float  # time.monotonic()
    order: int
    name: str = field(compare=False)
    args: tuple = field(compare=False, default=())
    kwargs: dict = field(compare=False, default_factory=dict)
    beat_entry: str | None = field(compare=False, default=None)


def _interval_s(entry_schedule) -> float | None:
    """Seconds between runs of a beat entry given as seconds, a timedelta or a `schedule`; None for others."""
    if isinstance(entry_schedule, int | float):
        return float(entry_schedule)
    if isinstance(entry_schedule, timedelta):
        return entry_schedule.total_seconds()
    if isinstance(entry_schedule, celery_schedule) and type(entry_schedule) is celery_schedule:
        return entry_schedule.run_every.total_seconds()
    return None


class InProcessRunner:
    """Tasks of a process that has no broker, run on `threads` daemon threads of its own, each at its due time.

    A scheduler thread keeps the due tasks in a heap and Celery beat's entries (`app.conf.beat_schedule`, those
    given in seconds) on their intervals; worker threads run what falls due, each task with Celery's `apply`, and
    close their database connections after each. A beat entry is not queued again while its last run is still
    waiting or running. What is queued lives in memory: if the process ends, the sweeps find the work again
    (unsent outbox rows, runs left `queued` or silent, stranded deliveries) when a runner next starts.
    """

    def __init__(self, app: Celery, *, threads: int | None = None, beat: bool = True):
        self.app, self.threads, self.beat = app, threads, beat  # threads: None for INPROCESS_THREADS
        self._cond = threading.Condition()
        self._heap: list[_Due] = []
        self._order = itertools.count()
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._beat_next: dict[str, float] = {}
        self._beat_busy: set[str] = set()
        self._pid: int | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._pid == os.getpid() and not self._stopping

    def start(self) -> None:
        """Start the threads (again in a forked child); the beat entries are due at once, as at a worker's start."""
        with self._cond:
            if self.running:
                return
            self._pid, self._stopping = os.getpid(), False
            self.threads = self.threads or settings.INPROCESS_THREADS
            self._heap, self._ready = [], queue.SimpleQueue()  # a forked child keeps nothing of its parent's queue
            now = time.monotonic()
            self._beat_next = {name: now for name in self.app.conf.beat_schedule} if self.beat else {}
            self._beat_busy = set()
            threading.Thread(target=self._schedule, name="tanhui-tasks-scheduler", daemon=True).start()
            for number in range(self.threads):
                threading.Thread(target=self._work, name=f"tanhui-tasks-{number + 1}", daemon=True).start()
        logger.info("in-process tasks: %s threads, beat %s", self.threads, "on" if self.beat else "off")

    def stop(self) -> None:
        """Stop after the tasks now running (the tests' runners); what is still queued is dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            for _ in range(self.threads):
                self._ready.put(None)

    def submit(self, name: str, args=(), kwargs=None, *, countdown: float | None = None, eta=None) -> str:
        """Queue task `name`, due after `countdown` seconds or at `eta` (an aware datetime), else now."""
        delay_s = countdown or 0.0
        if eta is not None:
            delay_s = (eta - timezone.now()).total_seconds()
        self.start()
        with self._cond:
            heapq.heappush(self._heap, _Due(time.monotonic() + max(0.0, delay_s), next(self._order), name,
                                            tuple(args or ()), dict(kwargs or {})))
            self._cond.notify()
        return uuid()

    def _beat_due(self, now: float) -> float:
        """Queue the beat entries that are due; return when the next one is."""
        schedule = self.app.conf.beat_schedule
        next_at = now + 60.0
        for name, due_at in self._beat_next.items():
            interval = _interval_s(schedule[name]["schedule"])
            if interval is None:
                continue
            if due_at <= now and name not in self._beat_busy:
                entry = schedule[name]
                self._beat_busy.add(name)
                self._ready.put(_Due(now, next(self._order), entry["task"], tuple(entry.get("args", ())),
                                     dict(entry.get("kwargs", {})), beat_entry=name))
                due_at = self._beat_next[name] = now + interval
            next_at = min(next_at, due_at)
        return next_at

    def _schedule(self) -> None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                next_at = self._beat_due(now)
                while self._heap and self._heap[0].at <= now:
                    self._ready.put(heapq.heappop(self._heap))
                if self._heap:
                    next_at = min(next_at, self._heap[0].at)
                self._cond.wait(timeout=max(0.0, next_at - now))

    def _work(self) -> None:
        while True:
            due = self._ready.get()
            if due is None or self._stopping:
                return
            try:
                self.app.tasks[due.name].apply(args=due.args, kwargs=due.kwargs, throw=True)
            except Exception:
                logger.exception("in-process task %s%s failed", due.name, due.args)
            finally:
                connections.close_all()  # this thread's connections; the next task opens its own
                if due.beat_entry:
                    with self._cond:
                        self._beat_busy.discard(due.beat_entry)


def _in_background() -> bool:
    """Whether tasks of this process go to its in-process runner: no broker, and not the tests' inline mode."""
    return app.conf.task_always_eager and getattr(settings, "INPROCESS_TASKS", "background") == "background"


class TanhuiTask(Task):
    """Celery's task, except that without a broker a published task goes to the in-process runner (see above)."""

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None,
                    shadow=None, **options):
        if _in_background():
            return self.AsyncResult(in_process.submit(self.name, args, kwargs, countdown=options.get("countdown"),
                                                      eta=options.get("eta")))
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, shadow, **options)


app = Celery("tanhui", task_cls=TanhuiTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
in_process = InProcessRunner(app)


@app.task(name="tanhui.ping")
def ping(payload: str) -> dict:
    """Echo `payload` with the worker's process id: shows that a broker round trip really reached a worker."""
    return {"payload": payload, "worker_pid": os.getpid()}


def _outboxes_send() -> None:
    """A web process with a broker, at its first request: publish what the outboxes hold (a thread of its own)."""
    try:
        for name in OUTBOX_TASKS:
            try:
                app.tasks[name].apply(throw=True)
            except Exception:
                logger.exception("sending the outbox at start (%s) failed; the beat sweep will", name)
    finally:
        connections.close_all()


_first_request = threading.Lock()


def _on_first_request(**_) -> None:
    if not _first_request.acquire(blocking=False):
        return
    request_started.disconnect(dispatch_uid="tanhui-tasks-start")
    if not getattr(settings, "OUTBOX_SEND_AT_START", True):
        return
    if _in_background():
        in_process.start()
    elif not app.conf.task_always_eager:
        threading.Thread(target=_outboxes_send, name="tanhui-outbox-start", daemon=True).start()


request_started.connect(_on_first_request, dispatch_uid="tanhui-tasks-start")


@worker_ready.connect
def _on_worker_ready(sender=None, **_) -> None:
    """A worker that starts sends the sweeps, so what waited while no worker ran goes out now."""
    if not getattr(settings, "OUTBOX_SEND_AT_START", True):
        return
    for name in WORKER_START_TASKS:
        try:
            app.send_task(name, ignore_result=True, retry=False)
        except Exception:
            logger.exception("sending %s at worker start failed", name)
