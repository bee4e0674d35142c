"""Celery doorways to webhook delivery: one attempt per task (each failed attempt queues the next through the
ledger's outbox, after its backoff); a periodic sweep queues again deliveries whose task was lost, and another
publishes what the broker did not take after commit."""

from celery import shared_task

from accounting.outbox import outbox_send_pending
from ledger.webhooks.models import Outbox
from ledger.webhooks.services import (
    OUTBOX_SEND_TASK,
    WEBHOOK_DELIVER_TASK,
    WEBHOOK_RESEND_TASK,
    webhook_deliver,
    webhook_deliveries_resend_stranded,
)


@shared_task(name=WEBHOOK_DELIVER_TASK, ignore_result=True)
def webhook_deliver_task(delivery_id: int, attempt: int | None = None) -> str:
    """Make attempt `attempt` (default: the next) of delivery `delivery_id`; return the delivery's status."""
    delivery, _ = webhook_deliver(delivery_id=delivery_id, attempt=attempt)
    return delivery.status


@shared_task(name=WEBHOOK_RESEND_TASK, ignore_result=True)
def webhook_deliveries_resend_task() -> list[int]:
    """Beat, every WEBHOOK_SWEEP_INTERVAL_S: queue the next attempt again for each stranded delivery."""
    return webhook_deliveries_resend_stranded()


@shared_task(name=OUTBOX_SEND_TASK, ignore_result=True)
def ledger_outbox_send_pending_task() -> int:
    """Beat, every OUTBOX_SWEEP_INTERVAL_S, and at start: publish what the broker did not take after commit."""
    return outbox_send_pending(Outbox)
