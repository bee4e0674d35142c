"""Reads that several doorways need (API, verify command, the pledge bundle)."""

import contextlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from django.db import connection, transaction

from ledger.core.errors import (
    CheckpointNotFoundError,
    EntryNotFoundError,
    TranslatableMessage,
    TreeSizeError,
    gettext_noop,
)
from ledger.log import tree
from ledger.log.models import Checkpoint, Entry
from ledger.log.tree import tree_size_current


@contextlib.contextmanager
def read_snapshot() -> Iterator[None]:
    """A read-only transaction whose queries all see the database at one moment (PostgreSQL: REPEATABLE READ READ
    ONLY), so that what is read together (an asset's tables and its entries, say) belongs together, and so that
    nothing inside can write. On SQLite, whose transactions here take the write lock, reads run as they are."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


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


class TreeProofs(NamedTuple):
    inclusion: list[list[bytes]]  # one audit path per (seq, tree_size) asked for
    consistency: list[list[bytes]]  # one proof per (old_size, new_size)
    roots: list[bytes]  # one root per tree size


def tree_proofs(*, inclusions: Sequence[tuple[int, int]] = (), consistencies: Sequence[tuple[int, int]] = (),
                roots: Sequence[int] = ()) -> TreeProofs:
    """Many proofs from one read of the stored tree: the inclusion proof of each (seq, tree_size), the consistency
    proof of each (old_size, new_size) and the root of each tree size (each >= 1), in the order asked. The same
    proofs, preconditions and errors as `tree_inclusion_proof`, `tree_consistency_proof` and `tree_root`, in two
    queries whatever their number (a bundle asks for one per entry and up to 32 consistency proofs)."""
    for seq, tree_size in inclusions:
        if not 0 <= seq < tree_size:
            raise TreeSizeError(gettext_noop("entry %(seq)s is not in a tree of size %(tree_size)s; "
                                             "want 0 <= seq < tree_size"), seq=seq, tree_size=tree_size)
    for old_size, new_size in consistencies:
        if not 0 < old_size <= new_size:
            raise TreeSizeError(gettext_noop("no consistency proof from size %(first)s to size %(second)s; "
                                             "want 0 < first <= second"), first=old_size, second=new_size)
    for tree_size in roots:
        if tree_size < 1:
            raise TreeSizeError(gettext_noop("tree_size %(tree_size)s is below 1"), tree_size=tree_size)
    largest = max([size for _, size in inclusions] + [size for _, size in consistencies] + list(roots), default=0)
    current = tree_size_current() if largest else 0
    if largest > current:
        raise TreeSizeError(gettext_noop("%(parameter)s %(tree_size)s is beyond the ledger's size "
                                         "%(current_tree_size)s"), parameter="tree_size", tree_size=largest,
                            current_tree_size=current,
                            extensions={"tree_size": largest, "current_tree_size": current})
    wanted = [tree.inclusion_ranges(seq, size) for seq, size in inclusions]
    wanted += [tree.consistency_ranges(old, new) for old, new in consistencies]
    wanted += [[(0, size)] for size in roots]
    hashes = tree._range_hashes([r for ranges in wanted for r in ranges])  # one query for every proof's nodes
    proofs, start = [], 0
    for ranges in wanted:
        proofs.append(hashes[start:start + len(ranges)])
        start += len(ranges)
    first_root = len(inclusions) + len(consistencies)
    return TreeProofs(inclusion=proofs[:len(inclusions)], consistency=proofs[len(inclusions):first_root],
                      roots=[root for (root,) in proofs[first_root:]])
