"""Celery doorway to webhook delivery: one attempt per run, retried with exponential backoff; a periodic sweep
resends deliveries whose task was lost."""

from celery import shared_task

from ledger.webhooks.services import (
    WEBHOOK_DELIVER_TASK,
    WEBHOOK_RESEND_TASK,
    webhook_deliver,
    webhook_deliveries_resend_stranded,
)


@shared_task(bind=True, name=WEBHOOK_DELIVER_TASK, max_retries=None)
def webhook_deliver_task(self, delivery_id: int) -> str:
    """Attempt delivery `delivery_id`; on failure schedule the next attempt (webhook_retry_delay_s). Returns the
    delivery's status after this attempt."""
    delivery, retry_in_s = webhook_deliver(delivery_id=delivery_id)
    # In-process (eager, the embedded default) there is no broker to wait in: the attempts follow each other at
    # once, and the log still records the wait a worker would have taken.
    while retry_in_s is not None and self.request.is_eager:
        delivery, retry_in_s = webhook_deliver(delivery_id=delivery_id)
    if retry_in_s is not None:
        raise self.retry(countdown=retry_in_s)
    return delivery.status


@shared_task(name=WEBHOOK_RESEND_TASK)
def webhook_deliveries_resend_task() -> list[int]:
    """Beat, every WEBHOOK_SWEEP_INTERVAL_S: send the task again for each stranded delivery."""
    return webhook_deliveries_resend_stranded()
