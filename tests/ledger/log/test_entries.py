"""Entries: bytes, hash, chain and signature; append-only guards; the stored Merkle tree; concurrent appends."""

import base64
import hashlib
import itertools
import multiprocessing
import random
from datetime import UTC, datetime

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import DatabaseError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import codec, merkle
from ledger.core.errors import EntryPayloadError, ImmutableEntryError, TreeSizeError
from ledger.log.keys import signing_key_load
from ledger.log.services import entry_append
from ledger.log.tree import tree_consistency_proof, tree_inclusion_proof, tree_root
from ledger.models import Checkpoint, Entry, TreeNode, VerifierKey
from tests.ledger.reference_tree import ref_mth, ref_path, ref_proof

FIXED = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr("ledger.log.services.timezone.now", lambda: FIXED)


@pytest.mark.django_db
def test_first_entry_bytes_hash_and_signature(fixed_clock, ledger_key_file):
    entry = entry_append(kind="asset.register", payload={"asset": "510727-2026-000001", "area_ha": "12.50"})
    # RFC 8785: keys sorted, no spaces; prev_hash 64 zeros for entry 0; timestamp with 6 fractional digits.
    want_bytes = (b'{"kind":"asset.register","payload":{"area_ha":"12.50","asset":"510727-2026-000001"},'
                  b'"prev_hash":"' + b"0" * 64 + b'","seq":0,"timestamp":"2026-03-01T08:30:00.000000Z"}')
    # printf '\x00%s' "$want_bytes" | sha256sum
    want_hash = hashlib.sha256(b"\x00" + want_bytes).digest()
    assert entry.seq == 0
    assert bytes(entry.prev_hash) == bytes(32)
    assert bytes(entry.hash) == want_hash
    # The signature verifies with the public key in the key file (Go's skey form), read independently here.
    skey = ledger_key_file.read_text().strip()
    assert skey.startswith("PRIVATE+KEY+tanhui.local/test-registry+")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = base64.b64decode(skey.split("+", 4)[4])[1:]
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    Ed25519PublicKey.from_public_bytes(public).verify(bytes(entry.signature), want_hash)
    assert entry.key_id == hashlib.sha256(b"tanhui.local/test-registry\n\x01" + public).digest()[:4].hex()
    assert VerifierKey.objects.count() == 1


@pytest.mark.django_db
def test_entries_chain_and_read_back(fixed_clock):
    entries = [entry_append(kind="test.note", payload={"asset": "A-1" if i % 2 else "A-2", "n": i})
               for i in range(5)]
    stored = list(Entry.objects.all())
    assert [e.seq for e in stored] == [0, 1, 2, 3, 4]
    for before, after in itertools.pairwise(stored):
        assert bytes(after.prev_hash) == bytes(before.hash)
    assert [bytes(e.hash) for e in stored] == [bytes(e.hash) for e in entries]
    assert [e.seq for e in Entry.objects.for_asset("A-1")] == [1, 3]
    assert stored[4].timestamp == FIXED


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "message"), [
    ({"area_ha": 1.5}, "payload.area_ha is the float 1.5; write decimals as strings"),
    ({"n": 2**53}, "payload.n is 9007199254740992, outside ±9007199254740991"),
    ({"when": datetime(2026, 1, 1)}, "payload.when is a datetime"),
    ([1, 2], "payload is a list, want a JSON object"),
    ({"holder": "\ud800"}, "payload.holder holds a lone surrogate"),
    ({"\udfff": 1}, "payload key '.udfff' holds a lone surrogate"),
])
def test_bad_payloads_refused_and_nothing_written(payload, message):
    with pytest.raises(EntryPayloadError, match=message):
        entry_append(kind="test.note", payload=payload)
    assert Entry.objects.count() == 0


# Payload values as check_payload admits them: no floats, integers within ±(2**53 - 1), any keys and text.
SAFE = 2**53 - 1
payload_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(st.characters(max_codepoint=127)) | st.text("abc_\u00e9\uffff\U0001f600", max_size=3),
        children, max_size=4),
    max_leaves=25)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), payload_values, max_size=6))
def test_entry_bytes_are_rfc8785_for_every_payload_check_payload_admits(payload):
    entry = {"seq": 7, "kind": "test.note", "payload": payload, "timestamp": "2026-03-01T08:30:00.000000Z",
             "prev_hash": "ab" * 32}
    assert codec.entry_bytes(seq=7, kind="test.note", payload=payload, timestamp=entry["timestamp"],
                             prev_hash=bytes.fromhex("ab" * 32)) == rfc8785.dumps(entry)


def test_entry_bytes_escape_and_order_like_rfc8785():
    # Non-ASCII text, control characters and keys above U+FFFF (UTF-16 order: U+1F600 before U+FFFF).
    payload = {"\uffff": 1, "\U0001f600": 2, "holder": "平武县\u2028\x1f\"\\\n\x7f"}
    want = ('{"kind":"k","payload":{"holder":"平武县\u2028\\u001f\\"\\\\\\n\x7f","\U0001f600":2,"\uffff":1},'
            '"prev_hash":"' + "0" * 64 + '","seq":0,"timestamp":"t"}').encode()
    assert codec.entry_bytes(seq=0, kind="k", payload=payload, timestamp="t", prev_hash=bytes(32)) == want


@pytest.mark.django_db
def test_bad_kind_refused():
    with pytest.raises(EntryPayloadError, match="entry kind 'has space'"):
        entry_append(kind="has space", payload={})


@pytest.mark.django_db
def test_append_inside_an_outer_transaction_rolls_back_with_it():
    entry_append(kind="test.note", payload={"n": 0})
    with pytest.raises(RuntimeError), transaction.atomic():
        entry_append(kind="test.note", payload={"n": 1})
        raise RuntimeError("the caller's own work failed")
    again = entry_append(kind="test.note", payload={"n": 2})
    assert again.seq == 1
    assert list(Entry.objects.values_list("seq", flat=True)) == [0, 1]
    assert tree_root(tree_size=2) == merkle.node_hash(*[bytes(h) for h in Entry.objects.values_list("hash", flat=True)])


# --- append-only -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_refuses_save_over_and_delete():
    entry = entry_append(kind="test.note", payload={"n": 0})
    entry.kind = "test.changed"
    with pytest.raises(ImmutableEntryError, match="ledger_entry row 0 is append-only: save over it refused"):
        entry.save()
    with pytest.raises(ImmutableEntryError, match="ledger_entry row 0 is append-only: delete refused"):
        entry.delete()
    with pytest.raises(ImmutableEntryError, match=r"ledger_entry is append-only: update\(\) refused"):
        Entry.objects.filter(seq=0).update(kind="test.changed")
    with pytest.raises(ImmutableEntryError, match=r"ledger_entry is append-only: delete\(\) refused"):
        Entry.objects.all().delete()
    with pytest.raises(ImmutableEntryError):
        TreeNode.objects.all().delete()
    with pytest.raises(ImmutableEntryError):
        Checkpoint.objects.all().update(tree_size=5)
    assert Entry.objects.get(seq=0).kind == "test.note"


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(("table", "statement"), [
    ("ledger_entry", "UPDATE ledger_entry SET kind = 'test.changed' WHERE seq = 0"),
    ("ledger_entry", "DELETE FROM ledger_entry WHERE seq = 0"),
    ("ledger_entry", "TRUNCATE ledger_entry"),
    ("ledger_treenode", "DELETE FROM ledger_treenode"),
    ("ledger_checkpoint", "TRUNCATE ledger_checkpoint CASCADE"),  # CASCADE: anchors refer to checkpoints
])
def test_postgres_trigger_refuses_changes(table, statement):
    entry_append(kind="test.note", payload={"n": 0})
    with (pytest.raises(DatabaseError, match=f"ledger table {table} is append-only: "), transaction.atomic(),
          connection.cursor() as cursor):
        cursor.execute("SET LOCAL tanhui.ledger_truncate = ''")  # the test suite's flush hatch, closed
        cursor.execute(statement)
    assert Entry.objects.get(seq=0).kind == "test.note"


# --- the stored tree ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stored_tree_agrees_with_merkle_module_and_reference():
    rng = random.Random(20260301)
    hashes = []
    for size in range(1, 71):
        hashes.append(bytes(entry_append(kind="test.note", payload={"n": size, "r": rng.randrange(10**9)}).hash))
        assert tree_root(tree_size=size) == merkle.root(hashes) == ref_mth(hashes)
    for size in [1, 2, 3, 7, 8, 9, 31, 32, 33, 64, 70] + [rng.randrange(1, 71) for _ in range(8)]:
        for index in range(size) if size < 10 else rng.sample(range(size), 6):
            got = tree_inclusion_proof(seq=index, tree_size=size)
            assert got == merkle.inclusion_proof(hashes[:size], index) == ref_path(index, hashes[:size])
        for old_size in range(1, size + 1) if size < 10 else rng.sample(range(1, size + 1), 6):
            got = tree_consistency_proof(old_size=old_size, new_size=size)
            assert got == merkle.consistency_proof(hashes[:size], old_size) == ref_proof(old_size, hashes[:size])
    # 70 leaves store 70 + 35 + 17 + 8 + 4 + 2 + 1 perfect subtrees
    assert TreeNode.objects.count() == 70 + 35 + 17 + 8 + 4 + 2 + 1


@pytest.mark.django_db
def test_tree_sizes_out_of_range_refused():
    entry_append(kind="test.note", payload={})
    with pytest.raises(TreeSizeError, match="tree_size 2 is beyond the ledger's size 1"):
        tree_inclusion_proof(seq=0, tree_size=2)
    with pytest.raises(TreeSizeError, match="entry 1 is not in a tree of size 1"):
        tree_inclusion_proof(seq=1, tree_size=1)
    with pytest.raises(TreeSizeError, match="no consistency proof from size 0 to size 1"):
        tree_consistency_proof(old_size=0, new_size=1)
    assert tree_root(tree_size=0) == hashlib.sha256(b"").digest()


# --- concurrency --------------------------------------------------------------------------------------------------

WRITERS = 8
APPENDS_PER_WRITER = 250


def _writer(writer: int, start, errors) -> None:
    from django.db import connections

    connections.close_all()  # never share the parent's socket
    try:
        start.wait()
        for n in range(APPENDS_PER_WRITER):
            entry_append(kind="test.concurrent", payload={"writer": writer, "n": n})
    except BaseException as error:  # report to the parent; a silent child would look like a pass
        errors.put(f"writer {writer}: {error!r}")
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_processes_append_without_fork_or_gap():
    from django.db import connections

    signing_key_load()  # create the key file once, before the children start
    connections.close_all()
    context = multiprocessing.get_context("fork")
    start, errors = context.Event(), context.Queue()
    processes = [context.Process(target=_writer, args=(w, start, errors)) for w in range(WRITERS)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join()
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    assert [p.exitcode for p in processes] == [0] * WRITERS

    rows = list(Entry.objects.order_by("seq").values_list("seq", "prev_hash", "hash", "payload"))
    assert len(rows) == 2000
    assert [seq for seq, *_ in rows] == list(range(2000))
    assert bytes(rows[0][1]) == bytes(32)
    for (_, _, before, _), (seq, prev, _, _) in itertools.pairwise(rows):
        assert bytes(prev) == bytes(before), f"entry {seq} does not link to entry {seq - 1}"
    per_writer = sorted((p["writer"], p["n"]) for *_, p in rows)
    assert per_writer == [(w, n) for w in range(WRITERS) for n in range(APPENDS_PER_WRITER)]
    leaves = [bytes(h) for _, _, h, _ in rows]
    assert tree_root(tree_size=2000) == merkle.root(leaves)
