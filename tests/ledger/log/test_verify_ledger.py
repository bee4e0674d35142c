"""manage.py verify_ledger: passes on an honest ledger, names the first bad seq after tampering."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from ledger.log import verification
from ledger.log.services import checkpoint_sign_latest, entry_append
from ledger.models import Checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger10(settings):
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0
    for n in range(10):
        entry_append(kind="test.note", payload={"asset": "A-1", "n": n, "holder": "collective-7"})
        if n in (3, 9):
            checkpoint_sign_latest(force=True)


def _verify() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", "--jobs", "2", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def _tamper(sql: str, params: list) -> None:
    """Change stored bytes as an attacker with database access would: around the trigger on PostgreSQL."""
    with connection.cursor() as cursor:
        table = "ledger_checkpoint" if "ledger_checkpoint" in sql else "ledger_entry"
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def test_honest_ledger_verifies(ledger10):
    code, output = _verify()
    assert code == 0, output
    assert output.startswith("ledger OK: 10 entries, 2 checkpoints verified")


@pytest.mark.parametrize(("sql", "params", "want"), [
    ("UPDATE ledger_entry SET payload = %s WHERE seq = 6",
     [json.dumps({"asset": "A-1", "n": 6, "holder": "collective-8"})],
     "entry 6: hash {stored} stored, but its bytes hash to "),
    ("UPDATE ledger_entry SET hash = %s WHERE seq = 5", [b"\x01" * 32],
     "entry 5: hash 0101010101010101010101010101010101010101010101010101010101010101 stored, but its bytes hash to"),
    ("UPDATE ledger_entry SET signature = %s WHERE seq = 2", [b"\x00" * 64],
     "entry 2: signature does not verify under key tanhui.local/test-registry+"),
    ("UPDATE ledger_entry SET prev_hash = %s WHERE seq = 8", [b"\x00" * 32],
     "entry 8: prev_hash 0000000000000000000000000000000000000000000000000000000000000000 does not match entry 7"),
    ("DELETE FROM ledger_entry WHERE seq = 4", [], "entry 4: missing"),
    ("UPDATE ledger_entry SET key_id = 'deadbeef' WHERE seq = 0", [],
     "entry 0: signed by key deadbeef, which is not published"),
    ("UPDATE ledger_checkpoint SET root_hash = %s WHERE tree_size = 10", [b"\x02" * 32],
     "checkpoint 10: note says origin 'tanhui.local/test-registry' size 10 root"),
])
def test_tampering_is_found_and_names_the_seq(ledger10, sql, params, want):
    stored = None
    if "payload" in sql:
        from ledger.models import Entry

        stored = bytes(Entry.objects.get(seq=6).hash).hex()
    _tamper(sql, params)
    code, output = _verify()
    assert code == 1
    assert output.startswith("ledger verification FAILED: " + want.format(stored=stored)), output


def test_replay_checker_hook(ledger10, monkeypatch):
    monkeypatch.setattr(verification, "REPLAY_CHECKERS", [])

    @verification.replay_checker
    def holders_match():
        yield verification.Failure(7, "projection: asset A-1 holder is collective-9, replay gives collective-7")

    code, output = _verify()
    assert code == 1
    assert "entry 7: projection: asset A-1 holder is collective-9, replay gives collective-7" in output


def test_checkpoint_beyond_entries_is_found(ledger10):
    _tamper("DELETE FROM ledger_entry WHERE seq = 9", [])
    code, output = _verify()
    assert code == 1
    assert "checkpoint 10 is beyond the ledger's 9 entries" in output
    assert Checkpoint.objects.count() == 2


# RFC 8032 section 7.1, TEST 1 and TEST 2: public key, message, signature.
RFC8032_VECTORS = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


@pytest.mark.parametrize(("public_key", "message", "signature"), RFC8032_VECTORS)
def test_entry_signature_check_accepts_rfc8032_vectors_and_refuses_changes(public_key, message, signature):
    check = verification.signature_check(bytes.fromhex(public_key))
    message, signature = bytes.fromhex(message), bytes.fromhex(signature)
    assert check(message, signature)
    assert not check(message + b"\x00", signature)
    assert not check(message, signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not check(message, signature[:63])
    assert not check(message, b"")


def test_entry_signature_check_agrees_with_the_note_verifier():
    import random

    from ledger.core import note

    generator = random.Random(8032)
    for n in range(200):
        signer = note.Signer(f"test/{n}", b"", generator.randbytes(32))
        verifier = signer.verifier
        check = verification.signature_check(verifier.public_key)
        message = generator.randbytes(32)
        signature = signer.sign(message)
        flipped = bytearray(signature)
        flipped[generator.randrange(64)] ^= 1 << generator.randrange(8)
        for candidate in (signature, bytes(flipped)):
            assert check(message, candidate) == verifier.verify(message, candidate)
        assert check(message, signature)
