"""ledger.core.note against the signed-note and checkpoint vectors of ../shared/vectors/signed_note.json."""

import base64
import json
import re
import subprocess
import sys

import pytest

from ledger.core import note
from ledger.core.errors import NoteError
from tests.conftest import PROJECT_ROOT, shared_path


def _vectors() -> dict:
    return json.loads(shared_path("vectors", "signed_note.json").read_text())


def _params(kind_filter):
    try:
        vectors = _vectors()["vectors"]
    except BaseException:  # shared data absent: one param that skips (or, under REQUIRE_SHARED_DATA, fails) in the test
        return [pytest.param(None, id="vectors-absent")]
    return [pytest.param(v, id=v["id"]) for v in vectors if v["kind"] in kind_filter]


@pytest.mark.parametrize("vector", _params({"verify"}))
def test_verify_vectors(vector):
    if vector is None:
        shared_path("vectors", "signed_note.json")
    verifier = note.parse_verifier_key(vector["vkey"])
    if vector["want_valid"]:
        opened = note.open_note(vector["note"], [verifier])
        assert opened.text == vector["want_text"]
        assert [s.name for s in opened.verified] == [verifier.name]
    else:
        with pytest.raises(NoteError, match=f"^{re.escape(vector['want_error'])}$"):
            note.open_note(vector["note"], [verifier])


@pytest.mark.parametrize("vector", _params({"sign_and_verify"}))
def test_sign_vectors_byte_for_byte(vector):
    if vector is None:
        shared_path("vectors", "signed_note.json")
    signer = note.parse_signer_key(vector["skey"])
    assert signer.verifier.vkey == vector["vkey"]
    assert signer.skey == vector["skey"]
    signed = note.sign_note(vector["text"], [signer])
    assert signed == vector["want_signed_note"]
    assert note.open_note(signed, [note.parse_verifier_key(vector["vkey"])]).text == vector["text"]


@pytest.mark.parametrize("vector", _params({"verify_multi"}))
def test_verify_multi_vectors(vector):
    if vector is None:
        shared_path("vectors", "signed_note.json")
    keys = {name: note.parse_verifier_key(vkey) for name, vkey in vector["vkeys"].items()}
    for case in vector["cases"]:
        trusted = [keys[name] for name in case["trusted"]]
        if "want_error" in case:
            with pytest.raises(NoteError, match=f"^{re.escape(case['want_error'])}$"):
                note.open_note(vector["note"], trusted)
            continue
        opened = note.open_note(vector["note"], trusted)
        assert [s.name for s in opened.verified] == case["want_verified"]
        assert [s.name for s in opened.unverified] == case["want_unverified"]


@pytest.mark.parametrize("vector", _params({"reject_vkey"}))
def test_bad_verifier_keys_rejected(vector):
    if vector is None:
        shared_path("vectors", "signed_note.json")
    for bad in vector["bad_vkeys"]:
        with pytest.raises(NoteError):
            note.parse_verifier_key(bad["vkey"])


def test_key_id_is_sha256_of_name_newline_type_key():
    # vkey PeterNeumann+c74f20a3+ARpc...: key id = first 4 bytes of
    # { printf 'PeterNeumann\n\x01'; echo ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW | base64 -d | tail -c 32; } \
    #   | sha256sum | cut -c1-8    -> c74f20a3
    public_key = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
    assert note.key_id("PeterNeumann", public_key).hex() == "c74f20a3"


def test_verifier_key_with_mismatched_key_id_rejected():
    with pytest.raises(NoteError, match="verifier key ID c74f20a4 does not match its key, which hashes to c74f20a3"):
        note.parse_verifier_key("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_malformed_notes_rejected():
    signer = note.parse_signer_key(_vectors()["checkpoint_vectors"]["test_keys"]["log"]["skey"])
    good = note.sign_note("Log\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n", [signer])
    for bad in [good.replace("\n\n", "\n"), good.rstrip("\n"), good.replace("\u2014", "-"), good + "junk\n",
                good.replace(" ", "  ", 1), "no newline"]:
        with pytest.raises(NoteError):
            note.open_note(bad, [signer.verifier])
    with pytest.raises(NoteError, match="must end in a newline"):
        note.sign_note("text", [signer])


# --- checkpoints ---------------------------------------------------------------------------------------------


def _checkpoint_vectors() -> dict:
    return _vectors()["checkpoint_vectors"]


def test_checkpoint_marshal_vectors():
    for vector in _checkpoint_vectors()["marshal"]:
        checkpoint = note.Checkpoint(vector["origin"], vector["size"], vector["hash_ascii"].encode())
        assert note.format_checkpoint(checkpoint) == vector["want"]
        assert note.parse_checkpoint(vector["want"], hash_size=None) == checkpoint
        with pytest.raises(NoteError, match=f"root has {len(vector['hash_ascii'])} bytes, want 32"):
            note.parse_checkpoint(vector["want"])


def test_checkpoint_unmarshal_invalid_vectors():
    for vector in _checkpoint_vectors()["unmarshal_invalid"]:
        with pytest.raises(NoteError):
            note.parse_checkpoint(vector["m"], hash_size=None)


def test_checkpoint_signed_by_log_verified_with_witness_keys_ignored():
    keys = _checkpoint_vectors()["test_keys"]
    log = note.parse_signer_key(keys["log"]["skey"])
    unknown = note.parse_signer_key(keys["unknown"]["skey"])
    assert log.verifier.vkey == keys["log"]["vkey"]
    root_hash = bytes(range(32))
    text = note.format_checkpoint(note.Checkpoint("Log", 7, root_hash, ("extension line",)))
    signed = note.sign_note(text, [unknown, log])
    opened = note.open_note(signed, [note.parse_verifier_key(keys["log"]["vkey"]),
                                     note.parse_verifier_key(keys["known1"]["vkey"])])
    assert [s.name for s in opened.verified] == ["Log"]
    assert [s.name for s in opened.unverified] == ["Unknown"]
    assert note.parse_checkpoint(opened.text) == note.Checkpoint("Log", 7, root_hash, ("extension line",))
    with pytest.raises(NoteError, match=r"^note has no verifiable signatures$"):
        note.open_note(signed, [note.parse_verifier_key(keys["known1"]["vkey"])])


def test_format_only_examples_parse():
    examples = _vectors()["format_only_examples"]
    for key in ("tlog_checkpoint", "tlog_cosigned_checkpoint"):
        text, signatures = note.parse_note(examples[key])
        checkpoint = note.parse_checkpoint(text)
        assert (checkpoint.origin, checkpoint.tree_size) == ("example.com/behind-the-sofa", 20852163)
        assert signatures[0].name == "example.com/behind-the-sofa"
        assert len(signatures[0].signature) == 64


def test_generated_signer_round_trips():
    signer = note.generate_signer("tanhui.local/test")
    again = note.parse_signer_key(signer.skey)
    assert again == signer
    assert note.parse_verifier_key(signer.verifier.vkey) == signer.verifier


def test_pure_cores_import_without_django():
    code = "import sys, ledger.core.merkle, ledger.core.note, ledger.core.errors; print('django' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, check=True)
    assert result.stdout.strip() == "False"
