"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification. Pure: bytes in, bytes out, no Django.

Vocabulary follows RFC 9162 section 2.1: a tree of `size` leaves; `leaf_hash` is SHA-256(0x00 || data);
`node_hash` is SHA-256(0x01 || left || right); the tree over n > 1 leaves splits at k, the largest power of two
smaller than n. All hashes are 32-byte `bytes`. Leaf indices are 0-based.

Proof generation (`inclusion_proof`, `consistency_proof`) takes the whole list of leaf hashes and costs O(n); the
database-backed tree in `ledger.log.tree` answers the same questions in O(log n) reads. Verification needs only the
proof. The public verifiers return True or False and never raise; `root_from_inclusion_proof` and
`roots_from_consistency_proof` raise `ProofError` with got/want messages, for callers that want the reason.
"""

import hashlib
from collections.abc import Sequence

from ledger.core.errors import ProofError

LEAF_HASH_PREFIX = b"\x00"  # RFC 6962 section 2.1: domain separation of leaves ...
NODE_HASH_PREFIX = b"\x01"  # ... from interior nodes, so a leaf can never pose as a node.
HASH_SIZE = 32  # SHA-256 output, bytes
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256() for the tree of size 0


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data). `data` is the leaf's full bytes (any length)."""
    return hashlib.sha256(LEAF_HASH_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right). Does not check the children's lengths."""
    return hashlib.sha256(NODE_HASH_PREFIX + left + right).digest()


def _levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every perfect subtree hash, bottom up: levels[h][i] is the root of leaves [i * 2**h, (i + 1) * 2**h).

    The last node of a level with an odd count has no sibling yet and is left out of the level above; this is
    the RFC 6962 tree, in which an unpaired right edge is promoted rather than duplicated.
    """
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def _range_hash(levels: list[list[bytes]], begin: int, end: int) -> bytes:
    """MTH(D[begin:end]) for a range whose `begin` is a multiple of a power of two >= end - begin.

    Every range the RFC 6962 recursion asks about has that shape, so it splits into perfect subtrees of strictly
    decreasing size, left to right; the MTH is those subtrees folded from the right.
    """
    parts = []
    while begin < end:
        height = (end - begin).bit_length() - 1
        while begin % (1 << height):
            height -= 1
        parts.append(levels[height][begin >> height])
        begin += 1 << height
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of `leaf_hashes`; `EMPTY_ROOT` for an empty sequence."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _range_hash(_levels(leaf_hashes), 0, len(leaf_hashes))


def _split(size: int) -> int:
    """k, the largest power of two smaller than `size` (requires size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path PATH(index, D[n]) of RFC 6962 section 2.1.1, leaf side first.

    Requires 0 <= index < len(leaf_hashes); raises `ProofError` otherwise. Empty for a tree of one leaf.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ProofError(f"index is beyond size: {index} >= {size}" if index >= 0 else f"negative index {index}")
    levels = _levels(leaf_hashes)
    path: list[bytes] = []
    begin, end, m = 0, size, index
    while end - begin > 1:  # walk down from the root, then reverse: the proof lists the deepest sibling first
        k = _split(end - begin)
        if m < k:
            path.append(_range_hash(levels, begin + k, end))
            end = begin + k
        else:
            path.append(_range_hash(levels, begin, begin + k))
            begin, m = begin + k, m - k
    path.reverse()
    return path


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) of RFC 6962 section 2.1.2 between the first `old_size` leaves and all of them.

    Requires 0 < old_size <= len(leaf_hashes) (no proof exists from the empty tree); raises `ProofError`
    otherwise. Empty when old_size == len(leaf_hashes).
    """
    size = len(leaf_hashes)
    if not 0 < old_size <= size:
        raise ProofError(f"no consistency proof from size {old_size} to size {size}; want 0 < old_size <= size")
    levels = _levels(leaf_hashes)
    path: list[bytes] = []
    begin, end, m, complete = 0, size, old_size, True  # SUBPROOF(m, D[begin:end], complete)
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            path.append(_range_hash(levels, begin + k, end))
            end = begin + k
        else:
            path.append(_range_hash(levels, begin, begin + k))
            begin, m, complete = begin + k, m - k, False
    if not complete:
        path.append(_range_hash(levels, begin, end))
    path.reverse()
    return path


def _inclusion_proof_size(index: int, size: int) -> tuple[int, int]:
    """(inner, border): proof hashes below the point where the leaf's path leaves the right edge, and on it.

    `inner` is the number of levels at which leaf `index` and the last leaf `size - 1` are in different
    subtrees; above that the leaf sits on the right border, and each set bit left there means a left sibling.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, (bytes, bytearray)):
        raise ProofError(f"{name} is {type(value).__name__}, want bytes")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, want {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf_hash` at `index` in a tree of `size` (RFC 9162 section 2.1.3.2).

    Requires 0 <= index < size, a 32-byte leaf hash and exactly the number of 32-byte proof hashes the
    (index, size) pair calls for; raises `ProofError` naming the value that is wrong otherwise.
    """
    if not isinstance(index, int) or not isinstance(size, int) or index < 0 or size < 0:
        raise ProofError(f"index {index!r} and size {size!r} must be non-negative integers")
    if index >= size:
        raise ProofError(f"index is beyond size: {index} >= {size}")
    _check_hash("leaf hash", leaf_hash)
    proof = list(proof or ())
    inner, border = _inclusion_proof_size(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {inner + border} (index={index}, size={size})")
    for position, sibling in enumerate(proof):
        _check_hash(f"proof[{position}]", sibling)
    result = bytes(leaf_hash)
    for level, sibling in enumerate(proof[:inner]):
        if (index >> level) & 1:
            result = node_hash(sibling, result)
        else:
            result = node_hash(result, sibling)
    for sibling in proof[inner:]:  # on the right border every sibling is to the left
        result = node_hash(sibling, result)
    return result


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when `proof` shows the leaf hash at `index` is in the tree of `size` leaves with hash `root`.

    False, never an exception, for anything malformed: index >= size, a leaf hash or root that is not 32 bytes,
    too many or too few proof hashes.
    """
    try:
        _check_hash("root", root)
        return root_from_inclusion_proof(index, size, leaf_hash, proof) == bytes(root)
    except (ProofError, TypeError, ValueError):
        return False


def roots_from_consistency_proof(old_size: int, new_size: int, proof: Sequence[bytes],
                                 old_root: bytes) -> tuple[bytes, bytes]:
    """(old root, new root) that `proof` implies (RFC 9162 section 2.1.4.2).

    Requires 0 < old_size <= new_size (no proof exists from the empty tree, not even 0 -> 0) and exactly the
    number of 32-byte hashes the sizes call for; when old_size == new_size the proof must be empty and both
    roots are `old_root`. Raises `ProofError` otherwise.
    """
    if not isinstance(old_size, int) or not isinstance(new_size, int):
        raise ProofError(f"old size {old_size!r} and new size {new_size!r} must be integers")
    if old_size <= 0:
        raise ProofError(f"no consistency proof from size {old_size}; want old size >= 1")
    if new_size < old_size:
        raise ProofError(f"new size {new_size} < old size {old_size}")
    _check_hash("old root", old_root)
    proof = list(proof or ())
    for position, sibling in enumerate(proof):
        _check_hash(f"proof[{position}]", sibling)
    if old_size == new_size:
        if proof:
            raise ProofError(f"wrong proof size {len(proof)}, want 0 (old size = new size = {old_size})")
        return bytes(old_root), bytes(old_root)

    # The old tree's right edge ends in a perfect subtree of 2**shift leaves; the proof is that subtree's hash
    # (left out when it is the whole old tree, since the verifier has old_root) followed by its inclusion path
    # in the new tree, seen as a tree of nodes at level `shift`.
    shift = (old_size & -old_size).bit_length() - 1
    node_index = (old_size - 1) >> shift
    inner, border = _inclusion_proof_size(old_size - 1, new_size)
    inner -= shift
    seeded = old_size == 1 << shift
    want = inner + border + (0 if seeded else 1)
    if len(proof) != want:
        raise ProofError(f"wrong proof size {len(proof)}, want {want} (old size={old_size}, new size={new_size})")
    if seeded:
        seed, path = bytes(old_root), proof
    else:
        seed, path = proof[0], proof[1:]
    old_hash = new_hash = seed
    for level, sibling in enumerate(path[:inner]):
        if (node_index >> level) & 1:  # the sibling is to the left: part of both trees
            old_hash = node_hash(sibling, old_hash)
            new_hash = node_hash(sibling, new_hash)
        else:  # the sibling is to the right: leaves past old_size, only in the new tree
            new_hash = node_hash(new_hash, sibling)
    for sibling in path[inner:]:
        old_hash = node_hash(sibling, old_hash)
        new_hash = node_hash(sibling, new_hash)
    return old_hash, new_hash


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> bool:
    """True when `proof` shows the tree (old_size, old_root) is a prefix of the tree (new_size, new_root).

    False, never an exception, for anything malformed, including any check from size 0 (even 0 -> 0).
    """
    try:
        _check_hash("new root", new_root)
        got_old, got_new = roots_from_consistency_proof(old_size, new_size, proof, old_root)
        return got_old == bytes(old_root) and got_new == bytes(new_root)
    except (ProofError, TypeError, ValueError):
        return False
