"""Celery doorways to the ledger's services."""

from celery import shared_task

from ledger.log.services import CHECKPOINT_TASK_NAME, checkpoint_sign_latest


@shared_task(name=CHECKPOINT_TASK_NAME)
def checkpoint_sign_latest_task(force: bool = False) -> int | None:
    """Sign a checkpoint if one is due; return its tree size (None when nothing was signed)."""
    checkpoint = checkpoint_sign_latest(force=force)
    return checkpoint.tree_size if checkpoint else None
