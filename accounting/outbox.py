"""The transactional outbox: a task to start after a commit is a row written in the same transaction.

A service that must start a task once its write commits calls `outbox_add` inside that transaction, so the row
commits with the write or not at all. Right after the commit the row is published (`outbox_send`):

- with a broker, over a connection of its own that gives up after OUTBOX_PUBLISH_TIMEOUT_S and never retries, so
  a broker that is down or hangs costs the request at most that, never an error;
- without one (in-process, the embedded default), it is handed to the in-process runner (config.celery), which
  runs it on a thread of this process after the response, at its due time.

A row the broker did not take stays unsent: the sweep `outbox_send_pending` (Celery beat, every
OUTBOX_SWEEP_INTERVAL_S, and once when a worker or a web process starts) publishes it as soon as the broker
answers again. A row is marked sent once published, and published at most once: a sender claims it first (an
UPDATE only one sender can win), publishes it, then marks it. A sender that dies between publishing and marking
leaves a claim that lapses after OUTBOX_CLAIM_S, and the row goes out a second time; the tasks are idempotent (a run
executes once, each webhook attempt is made once), so that costs a message that does nothing.

Each app keeps its own table, a concrete `OutboxMessage` (accounting.Outbox, ledger.Outbox), so that no app writes
another's tables; this module is the lowest layer that needs one, and the ledger uses it from above.
"""

import logging
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import KombuError

log = logging.getLogger(__name__)
SEND_BATCH = 200


class TaskNotSent(Exception):
    """The broker did not take a task within OUTBOX_PUBLISH_TIMEOUT_S (down, refusing, or not answering)."""


class OutboxMessage(models.Model):
    """One task to publish: its name, its JSON arguments and, for a delayed task, when it is due."""

    task = models.CharField(max_length=200, help_text="the Celery task's name")
    args = models.JSONField(default=list, help_text="its positional arguments")
    key = models.CharField(max_length=120, blank=True, help_text="what the task is for (e.g. run:42): at most one "
                                                                 "unsent row per key")
    not_before = models.DateTimeField(null=True, blank=True, help_text="due time of a delayed task (its eta)")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="a sender is publishing it since then")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="when the broker (or the in-process runner) "
                                                                    "took it")
    send_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["id"]
        indexes = [models.Index(fields=["id"], condition=Q(sent_at__isnull=True), name="%(app_label)s_outbox_unsent"),
                   models.Index(fields=["key"], name="%(app_label)s_outbox_key")]
        constraints = [models.UniqueConstraint(fields=["key"], condition=Q(sent_at__isnull=True) & ~Q(key=""),
                                               name="%(app_label)s_outbox_one_unsent_per_key")]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "unsent"
        return f"outbox {self.id}: {self.task}{tuple(self.args)} ({state})"


# When this process last saw the broker fail (time.monotonic()), or None: for OUTBOX_RETRY_AFTER_S after that, a
# publish is not tried at all, so that in an outage only one request per process and interval waits for a timeout.
_broker_failed_at: list[float | None] = [None]


def broker_connection():
    """A connection to the broker of its own, for `task_publish`: one attempt to connect, and reads and writes
    that give up after OUTBOX_PUBLISH_TIMEOUT_S. (The shared producer pool's would retry, and the Redis result
    backend would subscribe to each task's result first: about 19 s with the broker down, then "the application
    must be restarted".) A context manager; opening it does not connect yet."""
    timeout = settings.OUTBOX_PUBLISH_TIMEOUT_S
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout,  # Redis
               "read_timeout": timeout, "write_timeout": timeout,  # RabbitMQ (py-amqp)
               "max_retries": 0}  # one connection attempt (kombu retries for connect_timeout, then waits 2 s)
    return current_app.connection_for_write(connect_timeout=timeout, transport_options=options)


def task_publish(name: str, *, args: Sequence = (), eta: datetime | None = None, connection=None) -> None:
    """Publish task `name` once, quickly or not at all: raise TaskNotSent when the broker does not take it within
    OUTBOX_PUBLISH_TIMEOUT_S (a refused connection fails at once), or at once when it failed in this process less
    than OUTBOX_RETRY_AFTER_S ago. `connection`: a `broker_connection()` to publish over (a batch shares one);
    by default one of its own. Without a broker (eager), hand the task to the in-process runner instead; in the
    `inline` mode of the tests it runs here and now, and its own errors propagate."""
    app = current_app
    if eta is not None and eta <= timezone.now():
        eta = None
    if app.conf.task_always_eager:
        app.tasks[name].apply_async(args=list(args), eta=eta)
        return
    failed_at = _broker_failed_at[0]
    if failed_at is not None and time.monotonic() - failed_at < settings.OUTBOX_RETRY_AFTER_S:
        raise TaskNotSent(f"not tried: the broker failed {time.monotonic() - failed_at:.1f} s ago, and is tried again "
                          f"{settings.OUTBOX_RETRY_AFTER_S} s after that")
    if connection is None:
        with broker_connection() as own:
            return task_publish(name, args=args, eta=eta, connection=own)
    broker_errors = (KombuError, OSError, *connection.connection_errors, *connection.channel_errors)
    try:
        app.send_task(name, args=list(args), eta=eta, connection=connection, retry=False, ignore_result=True)
    except broker_errors as error:
        _broker_failed_at[0] = time.monotonic()
        raise TaskNotSent(f"{type(error).__name__}: {error}") from error
    _broker_failed_at[0] = None


def outbox_add(model: type[OutboxMessage], *, task: str, args: Sequence = (), key: str = "",
               not_before: datetime | None = None) -> OutboxMessage | None:
    """Write a row for task `task` in the caller's transaction; once that commits, try to publish it at once.

    With a `key` that an unsent row already has, write nothing and return None: that row will do the work."""
    row = model(task=task, args=list(args), key=key, not_before=not_before)
    if key:
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            return None
    else:
        row.save()
    transaction.on_commit(lambda: outbox_send(model, ids=[row.id]))
    return row


def _claimable(now: datetime) -> Q:
    return Q(sent_at__isnull=True) & (Q(claimed_at__isnull=True)
                                      | Q(claimed_at__lt=now - timedelta(seconds=settings.OUTBOX_CLAIM_S)))


def outbox_send(model: type[OutboxMessage], *, ids: Sequence[int] | None = None) -> int:
    """Publish the unsent rows of `model` (those in `ids`, else the oldest), each at most once, oldest first;
    return how many went out. The first row the broker does not take stops the batch (the broker is down: the
    rest would only wait for their timeouts too) and stays for the next sweep, with the error recorded."""
    rows = model.objects.filter(_claimable(timezone.now()))
    if ids is not None:
        rows = rows.filter(id__in=list(ids))
    sent = 0
    with ExitStack() as stack:
        connection = None if current_app.conf.task_always_eager else stack.enter_context(broker_connection())
        for row in rows.order_by("id")[:SEND_BATCH]:
            outcome = _send_one(model, row, connection)
            if outcome is False:
                break
            sent += bool(outcome)
    return sent


def _send_one(model: type[OutboxMessage], row: OutboxMessage, connection) -> bool | None:
    """Claim, publish and mark `row`: True once sent, None when another sender holds it, False when the broker
    did not take it (the error is recorded on the row)."""
    if not model.objects.filter(_claimable(timezone.now()), pk=row.pk).update(claimed_at=timezone.now()):
        return None
    try:
        task_publish(row.task, args=row.args, eta=row.not_before, connection=connection)
    except TaskNotSent as error:
        model.objects.filter(pk=row.pk).update(claimed_at=None, send_failures=F("send_failures") + 1,
                                               last_error=str(error)[:2000])
        log.warning("%s %s not sent, left for the sweep: %s", model._meta.label, row, error)
        return False
    except BaseException:  # inline mode: the task itself failed; the row stays for the sweep
        model.objects.filter(pk=row.pk).update(claimed_at=None)
        raise
    model.objects.filter(pk=row.pk).update(sent_at=timezone.now(), claimed_at=None)
    return True


def outbox_send_pending(model: type[OutboxMessage]) -> int:
    """The sweep: publish every unsent row of `model` that no sender holds, and forget rows sent more than
    OUTBOX_KEEP_S ago. Returns how many rows went out."""
    sent = 0
    while True:
        batch = outbox_send(model)
        sent += batch
        if batch < SEND_BATCH:
            break
    model.objects.filter(sent_at__lt=timezone.now() - timedelta(seconds=settings.OUTBOX_KEEP_S)).delete()
    return sent
