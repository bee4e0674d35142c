"""Celery doorways: take ids, call a service. Acknowledged late, so a worker that dies mid-run leaves the
message for another worker; the service writes results once, so a second delivery is harmless."""

from celery import shared_task

from accounting.services import RUN_EXECUTE_TASK, accounting_run_execute


@shared_task(name=RUN_EXECUTE_TASK, acks_late=True, reject_on_worker_lost=True)
def accounting_run_execute_task(run_id: int) -> str:
    return accounting_run_execute(run_id=run_id).status
