"""Celery doorways to the ledger's services."""

from celery import shared_task

from ledger.anchor_services import anchoring_tick
from ledger.services import CHECKPOINT_TASK_NAME, checkpoint_sign_latest


@shared_task(name=CHECKPOINT_TASK_NAME)
def checkpoint_sign_latest_task(force: bool = False) -> int | None:
    """Sign a checkpoint if one is due; return its tree size (None when nothing was signed)."""
    checkpoint = checkpoint_sign_latest(force=force)
    return checkpoint.tree_size if checkpoint else None


@shared_task(name="ledger.anchoring_tick", ignore_result=False)
def anchoring_tick_task() -> dict:
    """Anchor the latest checkpoint if the tree grew, send what is due, track what was sent (the beat task).

    Returns the counts of `anchoring_tick`, or {"status": "off", ...} (logged) when ANCHOR_RPC_URL is unset.
    """
    return anchoring_tick()
