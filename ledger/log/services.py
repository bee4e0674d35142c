"""What the ledger does: append entries, sign checkpoints, and restore a backup into an empty ledger (the
`*_restore` functions, for `manage.py import_ledger`). Other apps call these inside their own transactions.

    entry = entry_append(kind="asset.register", payload={"asset": "510727-2026-000123", ...})

Appends are serialised on the single `LogHead` row: SELECT ... FOR UPDATE on PostgreSQL; on SQLite the write
lock that BEGIN IMMEDIATE takes (settings set transaction_mode IMMEDIATE). The lock is held until the caller's
outermost transaction commits, so keep the work after an append short.

On PostgreSQL an appending transaction commits without waiting for its WAL flush and waits right after its
commit instead, so the lock is never held through an fsync; docs/ledger.md says why that is safe and what it
means for readers (`entries_flush_before_showing`).
"""

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import psycopg
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounting.outbox import TaskNotSent, task_publish
from ledger.core import codec, merkle, note
from ledger.core.errors import DurabilityUnconfirmedError, InconsistentCheckpointError, LedgerError, gettext_noop
from ledger.log.conf import ledger_setting
from ledger.log.keys import signing_key_load, verifier_key_publish
from ledger.log.models import Checkpoint, Entry, LogHead, TreeNode, VerifierKey
from ledger.log.tree import tree_consistency_proof, tree_root

HASH_SIZE = merkle.HASH_SIZE
CHECKPOINT_TASK_NAME = "ledger.checkpoint_sign_latest"
logger = logging.getLogger(__name__)


class Head(NamedTuple):
    """The log head: how many entries, the last one's hash, and the tree's right-edge frontier."""

    tree_size: int
    last_hash: bytes
    frontier: bytes


def _frontier_hashes(frontier: bytes) -> list[bytes]:
    frontier = bytes(frontier)
    return [frontier[i:i + HASH_SIZE] for i in range(0, len(frontier), HASH_SIZE)]


def frontier_root(frontier: bytes) -> bytes:
    """The Merkle root of a tree from its right-edge frontier (largest subtree first); EMPTY_ROOT if empty."""
    hashes = _frontier_hashes(frontier)
    if not hashes:
        return merkle.EMPTY_ROOT
    result = hashes.pop()
    while hashes:
        result = merkle.node_hash(hashes.pop(), result)
    return result


def _head_locked() -> Head:
    """Lock the log head row for this transaction and read it (creating it on a fresh database)."""
    sql = "SELECT tree_size, last_hash, frontier FROM ledger_loghead WHERE id = 1"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        if row is None:  # first append on a fresh (or flushed test) database; insert-or-ignore is race-free
            if Entry.objects.exists():
                raise LedgerError("the log head row is missing but entries exist; restore it before appending")
            LogHead.objects.bulk_create([LogHead(pk=1)], ignore_conflicts=True)
            cursor.execute(sql)
            row = cursor.fetchone()
    tree_size, last_hash, frontier = row
    return Head(tree_size, bytes(last_hash), bytes(frontier))


def tree_extend(frontier: bytes, seq: int, leaf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The stored nodes (node_key, hash) that leaf `seq` completes, and the frontier after it.

    Requires `frontier` to be the frontier of a tree of `seq` leaves. The new leaf completes one perfect subtree
    per trailing 1-bit of seq: merge it with the frontier. An append and a restore (`entries_restore`) both
    build the stored tree with this."""
    hashes = _frontier_hashes(frontier)
    nodes = [(TreeNode.key(0, seq), leaf)]
    node, level, index = leaf, 0, seq
    while index & 1:
        node = merkle.node_hash(hashes.pop(), node)
        level, index = level + 1, index >> 1
        nodes.append((TreeNode.key(level, index), node))
    hashes.append(node)
    return nodes, b"".join(hashes)


# One statement on PostgreSQL, so that the head lock is held for one round trip here rather than three.
# %b: bytes go as binary parameters.
_ENTRY_WRITE_POSTGRESQL = """
WITH entry AS (
    INSERT INTO ledger_entry (seq, kind, payload, timestamp, prev_hash, hash, signature, key_id)
    VALUES (%s, %s, %s, %s, %b, %b, %b, %s)
), nodes AS (
    INSERT INTO ledger_treenode (node_key, hash) SELECT * FROM unnest(%s::bigint[], %b::bytea[])
)
UPDATE ledger_loghead SET tree_size = %s, last_hash = %b, frontier = %b WHERE id = 1
"""


def _entry_write(entry: Entry, nodes: list[tuple[int, bytes]], head: Head) -> None:
    """Insert `entry` and its tree `nodes`, and move the log head to `head`."""
    if connection.vendor != "postgresql":
        entry.save()
        TreeNode.objects.bulk_create([TreeNode(node_key=key, hash=node) for key, node in nodes])
        LogHead.objects.filter(pk=1).update(tree_size=head.tree_size, last_hash=head.last_hash,
                                            frontier=head.frontier)
        return
    keys, hashes = zip(*nodes, strict=True)
    # psycopg's own cursor binds parameters on the server, where Django's binds them on the client: the hashes go
    # as bytes, not escaped text. Same session and transaction; errors still become django.db errors.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_ENTRY_WRITE_POSTGRESQL, [
            entry.seq, entry.kind, connection.ops.adapt_json_value(entry.payload, None),
            connection.ops.adapt_datetimefield_value(entry.timestamp), entry.prev_hash, entry.hash,
            entry.signature, entry.key_id, list(keys), list(hashes), head.tree_size, head.last_hash, head.frontier])
    entry._state.adding, entry._state.db = False, connection.alias  # stored: the model now refuses save-over


# PostgreSQL. Writing one WAL record (a transactional logical message: no table needed) makes this autocommit
# statement commit synchronously, so it returns once the WAL is on disk up to now (and, with synchronous
# standbys, on theirs); concurrent callers share the flush. Without synchronous standbys, when the local WAL is
# already on disk up to its insert position, nothing is written and nothing waits.
_WAL_FLUSH = """
SELECT CASE WHEN current_setting('synchronous_standby_names') = ''
                 AND pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn() THEN NULL
            ELSE pg_logical_emit_message(true, 'tanhui.ledger.flush', '') END
"""

# Run at the start of an append: commit this transaction without waiting for the flush, unless an earlier append
# in it already arranged that (the setting is already off), a checkpoint was signed in it (checkpoints always
# commit synchronously), or the session commits asynchronously anyway. Returns a row only when it switched.
# Savepoint rollbacks undo both settings, as they undo the on_commit callback registered with them.
_COMMIT_EARLY = """
SELECT set_config('synchronous_commit', 'off', true)
WHERE current_setting('synchronous_commit') <> 'off'
  AND current_setting('tanhui.checkpoint_signed', true) IS DISTINCT FROM 'yes'
"""


def _wal_flush() -> None:
    """After a commit made without waiting for its flush: return once that commit is on disk.

    The commit has happened whatever this says. If the wait fails, raise DurabilityUnconfirmedError and do not
    retry on a new connection: after a crash or a failover, the server that answers may no longer hold the commit,
    and its WAL would be "on disk" all the same. Later on_commit callbacks (webhooks) then do not run.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute(_WAL_FLUSH)
    except DatabaseError as error:
        raise DurabilityUnconfirmedError(
            gettext_noop("the change was committed, but the database did not confirm that it is on disk "
                         "(%(error)s); look it up before you repeat it"), error=str(error), extensions={}) from error


def entries_flush_before_showing() -> None:
    """Call after reading entries and before showing them outside: returns once every entry this session
    could read is on disk. Entries of other writers can be visible for a moment before their WAL flush (see
    docs/ledger.md); an entry shown and then lost in a crash would let the registry sign a different entry at
    the same seq. Inside a transaction, the wait runs after it commits."""
    if connection.vendor == "postgresql" and connection.connection is not None:
        transaction.on_commit(_wal_flush)


def _commit_early_then_flush() -> None:
    """PostgreSQL: commit the caller's transaction without holding the head lock through the WAL flush."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(_COMMIT_EARLY)
        switched = cursor.fetchone() is not None
    if switched:
        transaction.on_commit(_wal_flush)


_append_listeners: list[Callable[..., object]] = []


def on_entry_appended(listener: Callable[..., object]) -> None:
    """Call `listener(entry=...)` inside the transaction of every append (once per listener, however often this
    is called). Webhooks queue their deliveries this way, so that the log needs to know nothing of them."""
    if listener not in _append_listeners:
        _append_listeners.append(listener)


def entry_append(*, kind: str, payload: dict) -> Entry:
    """Append one signed, chained entry and its Merkle tree nodes; return it (seq assigned).

    Call inside your own `transaction.atomic()` so the entry commits with your state change, or alone (it opens
    its own). `kind` is 1-64 ASCII letters, digits, '_' or '.'; `payload` a JSON object whose numbers are
    integers within ±(2**53 - 1) (decimals as strings) and which names its asset under "asset" when it concerns
    one. Raises EntryPayloadError for anything else, before taking the lock. Register on_commit callbacks that
    announce the entry after this returns (or in an `on_entry_appended` listener), so that they run after the WAL
    flush.
    """
    codec.check_kind(kind)
    if not isinstance(payload, dict):
        raise codec.EntryPayloadError(gettext_noop("payload is a %(type)s, want a JSON object"),
                                      type=type(payload).__name__)
    codec.check_payload(payload)
    signer = signing_key_load()
    with transaction.atomic():
        verifier_key_publish(signer)
        _commit_early_then_flush()
        head = _head_locked()
        seq, prev_hash = head.tree_size, head.last_hash
        moment = timezone.now()
        body = codec.entry_bytes(seq=seq, kind=kind, payload=payload, timestamp=codec.format_timestamp(moment),
                                 prev_hash=prev_hash)
        leaf = merkle.leaf_hash(body)
        entry = Entry(seq=seq, kind=kind, payload=payload, timestamp=moment, prev_hash=prev_hash, hash=leaf,
                      signature=signer.sign(leaf), key_id=signer.key_id.hex())
        nodes, frontier = tree_extend(head.frontier, seq, leaf)
        _entry_write(entry, nodes, Head(seq + 1, leaf, frontier))
        for listener in _append_listeners:
            listener(entry=entry)  # their on_commit work runs after the WAL flush registered above
        transaction.on_commit(_checkpoint_request_if_due)
    return entry


# --- checkpoints -----------------------------------------------------------------------------------------------

_last_request_monotonic = [float("-inf")]


def _checkpoint_request_if_due() -> None:
    """After a commit: ask for a checkpoint at most once per interval per process.

    The request is the `ledger.checkpoint_sign_latest` task, published quickly or not at all (with a broker) or
    run by the in-process runner after the response (without one); a failure is logged, never raised into the
    caller, whose write has committed. Nothing is lost with a request: the entries that no checkpoint covers
    are the work to do, and Celery beat's checkpoint sweep (every LEDGER_CHECKPOINT_INTERVAL_S) signs them.
    """
    now = time.monotonic()
    if now - _last_request_monotonic[0] < ledger_setting("LEDGER_CHECKPOINT_INTERVAL_S"):
        return
    _last_request_monotonic[0] = now
    try:
        task_publish(CHECKPOINT_TASK_NAME)
    except TaskNotSent as error:
        logger.warning("checkpoint request not sent (%s); the checkpoint sweep will sign", error)
    except LedgerError:  # the tests' inline mode signs here and now
        logger.exception("signing a checkpoint after an append failed")


def checkpoint_sign_latest(*, force: bool = False) -> Checkpoint | None:
    """Sign a checkpoint of the whole ledger as it stands; return it, or None when there is nothing to do.

    Nothing to do: the ledger is empty, the last checkpoint already covers every entry, or (unless `force`) the
    last one is younger than LEDGER_CHECKPOINT_INTERVAL_S. Before signing, checks that the new tree is consistent
    with the last signed checkpoint (a consistency proof from the stored tree, verified) and raises
    InconsistentCheckpointError otherwise: the registry never signs two inconsistent checkpoints.
    """
    signer = signing_key_load()
    with transaction.atomic():
        verifier_key_publish(signer)
        if connection.vendor == "postgresql":  # never show a signed checkpoint before it is on disk
            with connection.cursor() as cursor:  # and keep later appends in this transaction from undoing that
                cursor.execute("SELECT set_config('synchronous_commit', 'on', true), "
                               "set_config('tanhui.checkpoint_signed', 'yes', true)")
        head = _head_locked()  # a stable tree while signing; appends wait a few milliseconds
        last = Checkpoint.objects.order_by("-tree_size").first()
        now = timezone.now()
        tree_size = head.tree_size
        if tree_size == 0 or (last is not None and last.tree_size == tree_size):
            return None
        interval_s = ledger_setting("LEDGER_CHECKPOINT_INTERVAL_S")
        if not force and last is not None and (now - last.created_at).total_seconds() < interval_s:
            return None
        root_hash = frontier_root(head.frontier)
        if last is not None:
            last_root = bytes(last.root_hash)
            if last.tree_size > tree_size:
                raise InconsistentCheckpointError(
                    gettext_noop("ledger has %(tree_size)s entries but checkpoint %(last_tree_size)s was signed; "
                                 "refusing to sign"), tree_size=tree_size, last_tree_size=last.tree_size)
            proof = tree_consistency_proof(old_size=last.tree_size, new_size=tree_size)
            if not merkle.verify_consistency(last.tree_size, tree_size, proof, last_root, root_hash):
                raise InconsistentCheckpointError(
                    gettext_noop("tree of size %(tree_size)s (root %(root)s) is not consistent with the signed "
                                 "checkpoint of size %(last_tree_size)s (root %(last_root)s); refusing to sign"),
                    tree_size=tree_size, root=root_hash.hex(), last_tree_size=last.tree_size,
                    last_root=last_root.hex(), extensions={"tree_size": tree_size, "last_tree_size": last.tree_size})
        text = note.format_checkpoint(note.Checkpoint(ledger_setting("LEDGER_ORIGIN"), tree_size, root_hash))
        checkpoint = Checkpoint(tree_size=tree_size, root_hash=root_hash, note_text=note.sign_note(text, [signer]),
                                key_id=signer.key_id.hex(), created_at=now)
        checkpoint.save()
    return checkpoint


# --- restoring a backup (manage.py import_ledger) ----------------------------------------------------------------

RESTORE_BATCH_ENTRIES = 2000  # entries per INSERT (COPY on PostgreSQL) while restoring
_ENTRY_COPY_POSTGRESQL = ("COPY ledger_entry (seq, kind, payload, timestamp, prev_hash, hash, signature, key_id) "
                          "FROM STDIN")
_NODE_COPY_POSTGRESQL = "COPY ledger_treenode (node_key, hash) FROM STDIN"


def _restore_write(entries: list[Entry], nodes: list[TreeNode]) -> None:
    """Insert a batch of restored entries and their nodes, then empty both lists. PostgreSQL: COPY, which
    takes a tenth of the time of a multi-row INSERT that Django builds with every hash escaped as text."""
    if connection.vendor != "postgresql":
        Entry.objects.bulk_create(entries)
        TreeNode.objects.bulk_create(nodes)
    elif entries:
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            with cursor.copy(_ENTRY_COPY_POSTGRESQL) as copy:
                for entry in entries:
                    copy.write_row((entry.seq, entry.kind, json.dumps(entry.payload), entry.timestamp,
                                    bytes(entry.prev_hash), bytes(entry.hash), bytes(entry.signature), entry.key_id))
            with cursor.copy(_NODE_COPY_POSTGRESQL) as copy:
                for node in nodes:
                    copy.write_row((node.node_key, bytes(node.hash)))
    entries.clear()
    nodes.clear()


def entries_restore(*, entries: Iterable[Entry]) -> Head:
    """Write `entries` into an empty ledger with the stored tree nodes they complete, move the log head past the
    last one, and return the new head. For restoring a backup (`manage.py import_ledger`) inside the caller's
    transaction.

    `entries` are unsaved Entry objects in log order whose bytes, hash and signature the caller has checked
    (`ledger.log.verification.EntryChecker`); here each must follow the one before it: seq 0, 1, 2 ... and its
    `prev_hash` the previous entry's hash (32 zero bytes for entry 0), else LedgerError names it. Takes the head
    lock first and refuses (LedgerError) when the ledger already holds an entry. Writes in batches of
    RESTORE_BATCH_ENTRIES, so memory does not grow with the ledger. Calls no append listeners (webhooks) and asks
    for no checkpoint: a restore announces nothing.
    """
    with transaction.atomic():
        head = _head_locked()
        if head.tree_size or Entry.objects.exists():
            raise LedgerError(f"the ledger already holds {max(head.tree_size, Entry.objects.count())} entries; "
                              "a restore needs an empty one")
        tree_size, last_hash, frontier = 0, codec.ZERO_HASH, b""
        entry_batch: list[Entry] = []
        node_batch: list[TreeNode] = []
        for entry in entries:
            if entry.seq != tree_size:
                raise LedgerError(f"entry {entry.seq} comes where entry {tree_size} belongs")
            if bytes(entry.prev_hash) != last_hash:
                raise LedgerError(f"entry {entry.seq}: prev_hash {bytes(entry.prev_hash).hex()} is not entry "
                                  f"{tree_size - 1}'s hash {last_hash.hex()}")
            last_hash = bytes(entry.hash)
            nodes, frontier = tree_extend(frontier, tree_size, last_hash)
            entry_batch.append(entry)
            node_batch.extend(TreeNode(node_key=key, hash=node) for key, node in nodes)
            tree_size += 1
            if len(entry_batch) >= RESTORE_BATCH_ENTRIES:
                _restore_write(entry_batch, node_batch)
        _restore_write(entry_batch, node_batch)
        LogHead.objects.filter(pk=1).update(tree_size=tree_size, last_hash=last_hash, frontier=frontier)
    return Head(tree_size, last_hash, frontier)


def checkpoints_restore(*, checkpoints: Iterable[Checkpoint]) -> int:
    """Insert the signed checkpoints of a restored ledger as they were signed (tree size, root, note, key, time),
    after `entries_restore`; return how many. Each root must be the stored tree's root at its size, and sizes
    must rise, else LedgerError names the checkpoint. The notes' signatures are the caller's to check."""
    written, last_size = [], 0
    for checkpoint in checkpoints:
        if checkpoint.tree_size <= last_size:
            raise LedgerError(f"checkpoint {checkpoint.tree_size} comes after checkpoint {last_size}; want rising "
                              "sizes")
        root = tree_root(tree_size=checkpoint.tree_size)
        if bytes(checkpoint.root_hash) != root:
            raise LedgerError(f"checkpoint {checkpoint.tree_size} root {bytes(checkpoint.root_hash).hex()}, but "
                              f"the entries give {root.hex()}")
        written.append(checkpoint)
        last_size = checkpoint.tree_size
    Checkpoint.objects.bulk_create(written)
    return len(written)


def verifier_keys_restore(*, keys: Iterable[VerifierKey]) -> None:
    """Publish the verifier keys of a restored ledger as they were: name, key, and when each was published and
    retired (the caller has checked that each parses and names its key id)."""
    for key in keys:
        created_at = key.created_at
        key.save()
        VerifierKey.objects.filter(pk=key.pk).update(created_at=created_at)  # auto_now_add set it to now
