"""Signed checkpoints: C2SP format, interval, consistency with the last one, key rotation."""

import base64
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger.core import merkle, note
from ledger.core.errors import InconsistentCheckpointError
from ledger.log.keys import verifier_keys
from ledger.log.services import checkpoint_sign_latest, entry_append
from ledger.models import Checkpoint, Entry, VerifierKey
from tests.ledger.reference_tree import ref_mth

pytestmark = pytest.mark.django_db


def _append(count: int) -> list[bytes]:
    return [bytes(entry_append(kind="test.note", payload={"n": n}).hash) for n in range(count)]


def test_nothing_to_sign_on_an_empty_ledger():
    assert checkpoint_sign_latest(force=True) is None


def test_checkpoint_is_a_signed_c2sp_note_of_size_and_root():
    leaves = _append(5)
    checkpoint = checkpoint_sign_latest()
    assert checkpoint.tree_size == 5
    assert bytes(checkpoint.root_hash) == ref_mth(leaves)
    opened = note.open_note(checkpoint.note_text, verifier_keys())
    body = f"tanhui.local/test-registry\n5\n{base64.b64encode(ref_mth(leaves)).decode()}\n"
    assert opened.text == body
    assert checkpoint.note_text.startswith(body + "\n\u2014 tanhui.local/test-registry ")
    assert checkpoint.key_id == opened.verified[0].key_id.hex()


def test_at_most_one_checkpoint_per_interval_and_none_without_new_entries(settings):
    _append(2)
    assert checkpoint_sign_latest().tree_size == 2
    assert checkpoint_sign_latest(force=True) is None  # nothing new
    _append(1)
    assert checkpoint_sign_latest() is None  # interval (3600 s in these tests) not over
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0
    assert checkpoint_sign_latest().tree_size == 3
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [2, 3]


def test_refuses_to_sign_a_tree_inconsistent_with_the_last_checkpoint():
    _append(3)
    # A checkpoint of size 2 whose root is not the root of the first two entries (as after a rewritten history).
    Checkpoint(tree_size=2, root_hash=merkle.leaf_hash(b"other history"), note_text="-", key_id="00000000",
               created_at=timezone.now() - timedelta(days=1)).save()
    with pytest.raises(InconsistentCheckpointError, match=r"tree of size 3 .* is not consistent with the signed "
                                                           r"checkpoint of size 2"):
        checkpoint_sign_latest(force=True)
    assert Checkpoint.objects.count() == 1


def test_sign_after_commit_when_due(settings, django_capture_on_commit_callbacks):
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0
    with django_capture_on_commit_callbacks(execute=True):
        entry_append(kind="test.note", payload={})
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [1]


def test_rotation_keeps_old_keys_published_and_new_entries_name_the_new_key(settings):
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0
    first = entry_append(kind="test.note", payload={"n": 0})
    old_checkpoint = checkpoint_sign_latest()
    call_command("rotate_ledger_key", stdout=io.StringIO())
    second = entry_append(kind="test.note", payload={"n": 1})
    new_checkpoint = checkpoint_sign_latest()
    assert first.key_id != second.key_id
    assert new_checkpoint.key_id == second.key_id != old_checkpoint.key_id
    keys = list(VerifierKey.objects.order_by("id"))
    assert [k.key_id for k in keys] == [first.key_id, second.key_id]
    assert keys[0].retired_at is not None and keys[1].retired_at is None
    published = verifier_keys()
    for checkpoint in (old_checkpoint, new_checkpoint):
        assert note.open_note(checkpoint.note_text, published).verified[0].key_id.hex() == checkpoint.key_id
    # A verifier that knows only the new key ignores the old key's signature: the old note is then unverifiable.
    with pytest.raises(note.NoteError, match="note has no verifiable signatures"):
        note.open_note(old_checkpoint.note_text, [k for k in published if k.key_id.hex() == second.key_id])
    assert Entry.objects.count() == 2


def test_signing_key_from_setting(settings):
    signer = note.generate_signer("tanhui.local/test-registry")
    settings.LEDGER_SIGNING_KEY = signer.skey
    entry = entry_append(kind="test.note", payload={})
    assert entry.key_id == signer.key_id.hex()
    assert signer.verifier.verify(bytes(entry.hash), bytes(entry.signature))
