"""Celery doorway to anchoring: the beat task."""

from celery import shared_task

from ledger.anchoring.services import anchoring_tick


@shared_task(name="ledger.anchoring_tick", ignore_result=False)
def anchoring_tick_task() -> dict:
    """Anchor the latest checkpoint if the tree grew, send what is due, track what was sent (the beat task).

    Returns the counts of `anchoring_tick`, or {"status": "off", ...} (logged) when ANCHOR_RPC_URL is unset.
    """
    return anchoring_tick()
