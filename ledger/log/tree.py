"""Merkle proofs from the stored tree (`TreeNode` rows): O(log n) nodes read in one query, whatever the size.

The recursion is RFC 6962's, but instead of hashing leaves it names the ranges of leaves whose tree hashes make
up a proof; each range splits into perfect subtrees, which are stored. `ledger.core.merkle` remains the reference for
what a proof is; tests check that the two agree.
"""

from django.db import connection

from ledger.core import merkle
from ledger.core.errors import TreeSizeError, gettext_noop
from ledger.log.models import LogHead, TreeNode


def perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) perfect subtrees that tile leaves [begin, end), left to right, largest first.

    Requires `begin` to be a multiple of a power of two >= end - begin (true of every range RFC 6962 asks for).
    """
    parts = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        while begin % (1 << level):
            level -= 1
        parts.append((level, begin >> level))
        begin += 1 << level
    return parts


def _split(size: int) -> int:
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose tree hashes form PATH(index, D[size]), in proof order. Requires 0 <= index < size."""
    ranges = []
    begin, end = 0, size
    while end - begin > 1:
        k = _split(end - begin)
        if index - begin < k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose tree hashes form PROOF(old_size, D[new_size]). Requires 0 < old_size <= new_size."""
    ranges = []
    begin, end, m, complete = 0, new_size, old_size, True
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin, m, complete = begin + k, m - k, False
    if not complete:
        ranges.append((begin, end))
    ranges.reverse()
    return ranges


def _range_hashes(ranges: list[tuple[int, int]]) -> list[bytes]:
    tilings = [perfect_subtrees(begin, end) for begin, end in ranges]
    keys = {TreeNode.key(level, index) for tiling in tilings for level, index in tiling}
    found: dict[int, bytes] = {}
    if keys:
        with connection.cursor() as cursor:  # one indexed query; the ORM's per-row overhead matters at ~40 rows
            placeholders = ", ".join(["%s"] * len(keys))
            cursor.execute(f"SELECT node_key, hash FROM {TreeNode._meta.db_table} WHERE node_key IN ({placeholders})",
                           list(keys))
            found = {key: bytes(value) for key, value in cursor.fetchall()}
    hashes = []
    for tiling in tilings:
        parts = []
        for level, index in tiling:
            key = TreeNode.key(level, index)
            if key not in found:
                raise TreeSizeError(gettext_noop("stored tree lacks node level=%(level)s index=%(index)s"),
                                    level=level, index=index)
            parts.append(found[key])
        result = parts.pop()
        while parts:
            result = merkle.node_hash(parts.pop(), result)
        hashes.append(result)
    return hashes


def tree_size_current() -> int:
    """The number of committed entries, as the log head records it."""
    head = LogHead.objects.filter(pk=1).values_list("tree_size", flat=True).first()
    return head or 0


def _check_size(tree_size: int, name: str = "tree_size") -> None:
    current = tree_size_current()
    if tree_size > current:
        raise TreeSizeError(gettext_noop("%(parameter)s %(tree_size)s is beyond the ledger's size "
                                         "%(current_tree_size)s"), parameter=name, tree_size=tree_size,
                            current_tree_size=current,
                            extensions={"tree_size": tree_size, "current_tree_size": current})


def tree_root(*, tree_size: int) -> bytes:
    """The Merkle root of the first `tree_size` entries (0 <= tree_size <= current size)."""
    if tree_size < 0:
        raise TreeSizeError(gettext_noop("tree_size %(tree_size)s is negative; want >= 0"), tree_size=tree_size)
    _check_size(tree_size)
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    return _range_hashes([(0, tree_size)])[0]


def tree_inclusion_proof(*, seq: int, tree_size: int) -> list[bytes]:
    """The inclusion proof of entry `seq` in the tree of `tree_size` entries. Requires 0 <= seq < tree_size."""
    if not 0 <= seq < tree_size:
        raise TreeSizeError(gettext_noop("entry %(seq)s is not in a tree of size %(tree_size)s; "
                                         "want 0 <= seq < tree_size"), seq=seq, tree_size=tree_size)
    _check_size(tree_size)
    return _range_hashes(inclusion_ranges(seq, tree_size))


def tree_consistency_proof(*, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof from `old_size` to `new_size` entries. Requires 0 < old_size <= new_size."""
    if not 0 < old_size <= new_size:
        raise TreeSizeError(gettext_noop("no consistency proof from size %(first)s to size %(second)s; "
                                         "want 0 < first <= second"), first=old_size, second=new_size)
    _check_size(new_size, "second")
    return _range_hashes(consistency_ranges(old_size, new_size))
