"""Celery doorways: take ids, call a service. Acknowledged late and rejected back to the queue when their worker
process is lost, so that a run's message is not lost with its worker; the service runs each run once whatever
the number of deliveries, and the stale-run sweep takes over a run whose worker was killed whole."""

from celery import shared_task

from accounting.models import Outbox
from accounting.outbox import outbox_send_pending
from accounting.services import (
    OUTBOX_SEND_TASK,
    RUN_EXECUTE_TASK,
    RUNS_REQUEUE_TASK,
    accounting_run_execute,
    accounting_runs_requeue_stale,
)


@shared_task(name=RUN_EXECUTE_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def accounting_run_execute_task(run_id: int, take_over: int | None = None, seen_heartbeat: str | None = None) -> str:
    """Execute run `run_id`; `take_over` and `seen_heartbeat` come from the stale-run sweep. Returns its status."""
    return accounting_run_execute(run_id=run_id, take_over=take_over, seen_heartbeat=seen_heartbeat).status


@shared_task(name=RUNS_REQUEUE_TASK, ignore_result=True)
def accounting_runs_requeue_stale_task() -> list[int]:
    """Beat, every RUN_SWEEP_INTERVAL_S: queue again the runs whose worker died or whose message was lost."""
    return accounting_runs_requeue_stale()


@shared_task(name=OUTBOX_SEND_TASK, ignore_result=True)
def accounting_outbox_send_pending_task() -> int:
    """Beat, every OUTBOX_SWEEP_INTERVAL_S, and at start: publish what the broker did not take after commit."""
    return outbox_send_pending(Outbox)
