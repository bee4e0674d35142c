"""Full verification of the stored ledger: what `manage.py verify_ledger` runs.

Checks, in order, and stops at the first failure:

1. every entry: seq has no gap, its bytes (ledger.core.codec) hash to the stored `hash`, `prev_hash` equals the
   previous entry's hash, and `signature` verifies under the published key it names;
2. every signed checkpoint: its note verifies under a published key, its text names this log's origin, its size
   and root equal the stored columns, and the root equals the root recomputed from the entries' hashes;
3. consecutive checkpoints: a consistency proof from the stored tree verifies between them (this also checks the
   stored tree's nodes), and the log head agrees with the entries;
4. every registered replay checker (`replay_checker`): other apps add "projection equals a replay" checks here.

Entry checks run in `jobs` processes over ranges of seq (PostgreSQL); hashing the tree runs in this process.
Entry signatures are checked with libsodium (PyNaCl), which verifies Ed25519 in about 60 % of the time OpenSSL
takes here; that is most of the cost of checking a million entries. Checkpoint notes, and the bank's offline
verifier (`python -m ledger.verifier`), use `cryptography`.
"""

import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, connections
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.core import codec, merkle, note
from ledger.core.errors import NoteError
from ledger.log.conf import ledger_setting
from ledger.log.models import Checkpoint, Entry, LogHead, VerifierKey
from ledger.log.tree import tree_consistency_proof

CHUNK_ENTRIES = 25_000


@dataclass(frozen=True, slots=True)
class Failure:
    """The first thing found wrong. `seq` names the entry (None when the fault is not one entry's)."""

    seq: int | None
    what: str

    def __str__(self):
        return f"entry {self.seq}: {self.what}" if self.seq is not None else self.what


ReplayChecker = Callable[[], Iterable[Failure]]
REPLAY_CHECKERS: list[ReplayChecker] = []


def replay_checker(function: ReplayChecker) -> ReplayChecker:
    """Register `function` (no arguments; yields Failure for each projection row that differs from a replay of
    the ledger) to run after the ledger's own checks. Use as a decorator in your app's module that
    AppConfig.ready() imports."""
    REPLAY_CHECKERS.append(function)
    return function


def _verifiers() -> dict[str, note.Verifier]:
    keys = {}
    for vkey in VerifierKey.objects.values_list("vkey", flat=True):
        verifier = note.parse_verifier_key(vkey)
        keys[verifier.key_id.hex()] = verifier
    return keys


def signature_check(public_key: bytes) -> Callable[[bytes, bytes], bool]:
    """A function (message, signature) -> bool: is `signature` this Ed25519 key's signature of `message`."""
    key = VerifyKey(public_key)

    def check(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True

    return check


class EntryChecker:
    """Checks one entry on its own against a set of verifier keys: `fault(...)` says what is wrong with it.

    Built once per set of keys (it prepares one libsodium key per key id). verify_ledger checks stored entries
    with it, and `manage.py import_ledger` the entries of a backup before they are written."""

    def __init__(self, verifiers: dict[str, note.Verifier]):
        self.verifiers = verifiers
        self.checks = {key_id: signature_check(verifier.public_key) for key_id, verifier in verifiers.items()}

    def fault(self, *, seq: int, kind: str, payload: dict, timestamp: str, prev_hash: bytes, stored_hash: bytes,
              signature: bytes, key_id: str) -> str | None:
        """What is wrong with the entry, or None: its bytes (`timestamp` in the codec's RFC 3339 form) cannot be
        encoded, do not hash to `stored_hash`, or `signature` does not verify under the key `key_id` names. The
        link to the entry before it (seq, prev_hash) is the caller's to check."""
        try:
            body = codec.entry_bytes(seq=seq, kind=kind, payload=payload, timestamp=timestamp, prev_hash=prev_hash)
        except codec.EntryPayloadError as error:
            return f"cannot re-encode: {error}"
        recomputed = merkle.leaf_hash(body)
        if recomputed != stored_hash:
            return f"hash {stored_hash.hex()} stored, but its bytes hash to {recomputed.hex()}"
        check = self.checks.get(key_id)
        if check is None:
            return f"signed by key {key_id}, which is not published"
        if not check(stored_hash, signature):
            return f"signature does not verify under key {self.verifiers[key_id].name}+{key_id}"
        return None


def _check_range(first_seq: int, end_seq: int, verifiers: dict[str, note.Verifier]) -> tuple[Failure | None, bytes]:
    """Check entries first_seq..end_seq-1; return the first failure (or None) and their hashes, concatenated."""
    previous = bytes(codec.ZERO_HASH)
    if first_seq > 0:
        row = Entry.objects.filter(seq=first_seq - 1).values_list("hash", flat=True).first()
        if row is None:
            return Failure(first_seq - 1, "missing"), b""
        previous = bytes(row)
    hashes = bytearray()
    expected = first_seq
    checker = EntryChecker(verifiers)
    rows = (Entry.objects.filter(seq__gte=first_seq, seq__lt=end_seq).order_by("seq")
            .values_list("seq", "kind", "payload", "timestamp", "prev_hash", "hash", "signature", "key_id"))
    for seq, kind, payload, timestamp, prev_hash, stored_hash, signature, key_id in rows.iterator(chunk_size=5000):
        stored_hash, prev_hash = bytes(stored_hash), bytes(prev_hash)
        if seq != expected:
            return Failure(expected, f"missing: the next stored entry is {seq}, want {expected}"), bytes(hashes)
        if prev_hash != previous:
            return Failure(seq, f"prev_hash {prev_hash.hex()} does not match entry {seq - 1}'s hash "
                                f"{previous.hex()}"), bytes(hashes)
        fault = checker.fault(seq=seq, kind=kind, payload=payload, timestamp=codec.format_timestamp(timestamp),
                              prev_hash=prev_hash, stored_hash=stored_hash, signature=bytes(signature), key_id=key_id)
        if fault is not None:
            return Failure(seq, fault), bytes(hashes)
        hashes += stored_hash
        previous = stored_hash
        expected += 1
    if expected != end_seq:
        return Failure(expected, f"missing: entries stop at {expected}, want {end_seq}"), bytes(hashes)
    return None, bytes(hashes)


def _worker(arguments):
    first_seq, end_seq, verifiers = arguments
    try:
        return _check_range(first_seq, end_seq, verifiers)
    finally:
        connections.close_all()


def _check_entries(tree_size: int, verifiers, jobs: int) -> tuple[Failure | None, bytes]:
    ranges = [(start, min(start + CHUNK_ENTRIES, tree_size), verifiers)
              for start in range(0, tree_size, CHUNK_ENTRIES)]
    if jobs <= 1 or len(ranges) <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        results = (_check_range(*r) for r in ranges)
        pool = None
    else:
        connections.close_all()  # children must open their own connections
        pool = multiprocessing.get_context("fork").Pool(jobs)
        results = pool.imap(_worker, ranges)
    hashes = bytearray()
    try:
        for failure, chunk in results:
            hashes += chunk
            if failure is not None:
                return failure, bytes(hashes)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return None, bytes(hashes)


class _Frontier:
    """Roots of growing prefixes of the leaves, O(log n) state (the right edge's perfect subtrees)."""

    def __init__(self):
        self.size = 0
        self.stack: list[bytes] = []

    def push(self, leaf: bytes) -> None:
        node, index = leaf, self.size
        while index & 1:
            node = merkle.node_hash(self.stack.pop(), node)
            index >>= 1
        self.stack.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        result = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            result = merkle.node_hash(left, result)
        return result


def ledger_verify(*, jobs: int = 1) -> Failure | None:
    """Run every check in the module docstring; return the first Failure, or None when all hold."""
    verifiers = _verifiers()
    head = LogHead.objects.filter(pk=1).first()
    entry_count = Entry.objects.count()
    last = Entry.objects.order_by("-seq").values_list("seq", flat=True).first()
    tree_size = max(entry_count, (last + 1) if last is not None else 0)
    failure, hashes = _check_entries(tree_size, verifiers, jobs)
    if failure is not None:
        return failure

    origin = ledger_setting("LEDGER_ORIGIN")
    frontier = _Frontier()
    previous = None
    for checkpoint in Checkpoint.objects.order_by("tree_size"):
        size, stored_root = checkpoint.tree_size, bytes(checkpoint.root_hash)
        if size > tree_size:
            return Failure(None, f"checkpoint {size} is beyond the ledger's {tree_size} entries")
        while frontier.size < size:
            frontier.push(hashes[frontier.size * 32:(frontier.size + 1) * 32])
        try:
            opened = note.open_note(checkpoint.note_text, verifiers.values())
            body = note.parse_checkpoint(opened.text)
        except NoteError as error:
            return Failure(None, f"checkpoint {size}: {error}")
        if (body.origin, body.tree_size, body.root_hash) != (origin, size, stored_root):
            return Failure(None, f"checkpoint {size}: note says origin {body.origin!r} size {body.tree_size} root "
                                 f"{body.root_hash.hex()}, want {origin!r} {size} {stored_root.hex()}")
        recomputed = frontier.root()
        if recomputed != stored_root:
            return Failure(size - 1, f"checkpoint {size} root {stored_root.hex()} signed, but the entries give "
                                     f"{recomputed.hex()}")
        if previous is not None:
            proof = tree_consistency_proof(old_size=previous.tree_size, new_size=size)
            if not merkle.verify_consistency(previous.tree_size, size, proof, bytes(previous.root_hash), stored_root):
                return Failure(None, f"checkpoints {previous.tree_size} and {size} are not consistent "
                                     "(by the stored tree's proof)")
        previous = checkpoint
    if head is not None and head.tree_size != tree_size:
        return Failure(None, f"log head says {head.tree_size} entries, want {tree_size}")

    for checker in REPLAY_CHECKERS:
        for found in checker():
            return found
    return None
