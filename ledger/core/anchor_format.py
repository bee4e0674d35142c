"""The data an anchor transaction carries for a checkpoint, version 1. Pure: the standard library only.

    "THA1" (4 bytes) || tree size (uint64, big-endian, 8 bytes) || Merkle root (32 bytes)  = 44 bytes

The registry writes it (`ledger.anchoring`) and the offline verifier reads it back from the chain
(`ledger.verifier`); both use these two functions.
"""

import struct

from ledger.core.errors import LedgerError

# An anchor's status names, as the registry records them and bundles carry them.
ANCHOR_SENT, ANCHOR_FINAL = "sent", "final"
ANCHOR_ON_CHAIN = (ANCHOR_SENT, ANCHOR_FINAL)  # a transaction a verifier can look up on chain

ANCHOR_MAGIC = b"THA1"
ANCHOR_DATA_SIZE = 44
ROOT_SIZE = 32
_LAYOUT = struct.Struct(">4sQ32s")  # magic, tree size (uint64 big-endian), root
assert _LAYOUT.size == ANCHOR_DATA_SIZE


class AnchorError(LedgerError):
    """Base class of anchoring errors."""


class AnchorDataError(AnchorError, ValueError):
    """Transaction data is not a version-1 Tanhui anchor (wrong length or prefix), or the values do not fit."""


def anchor_data(tree_size: int, root: bytes) -> bytes:
    """The 44-byte data field anchoring the checkpoint of `tree_size` entries with Merkle root `root`.

    Requires 0 <= tree_size < 2**64 and len(root) == 32; raises AnchorDataError otherwise.
    """
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or not 0 <= tree_size < 2**64:
        raise AnchorDataError(f"tree size {tree_size!r} does not fit an unsigned 64-bit integer")
    root = bytes(root)
    if len(root) != ROOT_SIZE:
        raise AnchorDataError(f"root is {len(root)} bytes, want {ROOT_SIZE}")
    return _LAYOUT.pack(ANCHOR_MAGIC, tree_size, root)


def anchor_data_parse(data: bytes) -> tuple[int, bytes]:
    """(tree size, root) from an anchor transaction's data field; AnchorDataError if it is not version-1 data."""
    data = bytes(data)
    if len(data) != ANCHOR_DATA_SIZE:
        raise AnchorDataError(f"anchor data is {len(data)} bytes, want {ANCHOR_DATA_SIZE}")
    magic, tree_size, root = _LAYOUT.unpack(data)
    if magic != ANCHOR_MAGIC:
        raise AnchorDataError(f"anchor data starts with {magic!r}, want {ANCHOR_MAGIC!r}")
    return tree_size, root
