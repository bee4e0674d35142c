"""Reads that several doorways need (API, verify command, later the pledge bundle)."""

from ledger.core.errors import CheckpointNotFoundError, EntryNotFoundError, TranslatableMessage, gettext_noop
from ledger.log.models import Checkpoint, Entry
from ledger.log.tree import tree_size_current


def entry_get(*, seq: int) -> Entry:
    """The entry at `seq`; EntryNotFoundError (naming the ledger's size) when there is none."""
    entry = Entry.objects.filter(seq=seq).first()
    if entry is None:
        raise EntryNotFoundError(seq, tree_size_current())
    return entry


def checkpoint_latest() -> Checkpoint:
    """The most recent signed checkpoint; CheckpointNotFoundError when none has been signed yet."""
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    if checkpoint is None:
        raise CheckpointNotFoundError(gettext_noop("no checkpoint has been signed yet"))
    return checkpoint


def checkpoint_get(*, tree_size: int) -> Checkpoint:
    """The checkpoint of exactly `tree_size` entries; CheckpointNotFoundError naming the nearest ones."""
    checkpoint = Checkpoint.objects.filter(tree_size=tree_size).first()
    if checkpoint is None:
        below = Checkpoint.objects.filter(tree_size__lt=tree_size).order_by("-tree_size").first()
        above = Checkpoint.objects.filter(tree_size__gt=tree_size).order_by("tree_size").first()
        size_below, size_above = (below.tree_size if below else None), (above.tree_size if above else None)
        none = TranslatableMessage(gettext_noop("none"))
        raise CheckpointNotFoundError(
            gettext_noop("no checkpoint of size %(tree_size)s; nearest signed sizes: %(below)s below, %(above)s above"),
            tree_size=tree_size, below=none if size_below is None else size_below,
            above=none if size_above is None else size_above,
            extensions={"tree_size": tree_size, "size_below": size_below, "size_above": size_above})
    return checkpoint
