"""The offline verifier: a valid bundle passes; each tampered field fails naming that field; unknown keys,
inconsistent trusted checkpoints and unusable input are refused; the modules import without Django."""

import base64
import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785

from ledger.core import note
from ledger.log.keys import signing_key_load
from ledger.models import Checkpoint
from ledger.verifier.checks import entry_bytes, verify_bundle
from ledger.verifier.errors import BundleFormatError, BundleInvalidError

pytestmark = pytest.mark.django_db
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def run_verifier(*args: str) -> subprocess.CompletedProcess:
    """`python -m ledger.verifier ...` in a clean environment: no Django settings, only PATH."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([sys.executable, "-m", "ledger.verifier", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, check=False)


def write(tmp_path: Path, name: str, document) -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return str(path)


def position(bundle: dict, kind: str, nth: int = 0) -> int:
    return [i for i, e in enumerate(bundle["entries"]) if e["kind"] == kind][nth]


def flip_b64(text: str, byte: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_valid_bundle_verifies_offline(bundle, registry_key, scene, tmp_path):
    result = run_verifier(write(tmp_path, "bundle.json", bundle), "--key", registry_key)
    assert result.returncode == 0, result.stderr
    size = Checkpoint.objects.order_by("-tree_size").first().tree_size
    assert f"VALID: asset {scene.asset.code}, held by Guanba village collective" in result.stdout
    assert "active pledges: 1 (pledge" in result.stdout and "60000.00 CNY" in result.stdout
    assert f"checkpoint of size {size}" in result.stdout


def test_bundle_shape(bundle, scene):
    kinds = [e["kind"] for e in bundle["entries"]]
    # the holder's and both banks' party.create, then register, confirm, value, pledge, release, pledge
    assert kinds.count("party.create") == 3
    assert kinds[3:] == ["asset.register", "asset.confirm", "asset.value", "pledge.create", "pledge.release",
                         "pledge.create"]
    assert [p["status"] for p in bundle["pledges"]] == ["released", "active"]
    assert all(e["payload"].get("asset") in (None, scene.asset.code) for e in bundle["entries"])
    assert [p["index"] for p in bundle["proofs"]] == [e["seq"] for e in bundle["entries"]]
    assert len(bundle["consistency"]) >= 2 and bundle["keys"][0]["status"] == "current"


def _mutate_entry_payload(b):
    i = position(b, "asset.register")
    b["entries"][i]["payload"]["rights_type"] = "forest_land_ownersh1p"
    return f"entries[{i}]", "entry hash does not match"


def _mutate_proof_hash(b):
    i = position(b, "pledge.create")
    b["proofs"][i]["hashes"][0] = flip_b64(b["proofs"][i]["hashes"][0], 5)
    return f"proofs[{i}]", "does not lead to the checkpoint root"


def _mutate_extra_proof_hash(b):
    i = position(b, "asset.value")
    b["proofs"][i]["hashes"].append(b["proofs"][i]["hashes"][0])
    return f"proofs[{i}].hashes", "wrong proof size"


def _mutate_proof_index(b):
    b["proofs"][1]["index"] += 1
    return "proofs[1].index", "is not entries[1].seq"


def _mutate_tree_size(b):
    b["checkpoint"]["tree_size"] += 1
    return "checkpoint.tree_size", "is not the signed checkpoint's tree size"


def _mutate_checkpoint_root(b):
    b["checkpoint"]["root_hash"] = flip_b64(b["checkpoint"]["root_hash"])
    return "checkpoint.root_hash", "is not the signed checkpoint's root"


def _mutate_checkpoint_text(b):
    origin, size, rest = b["checkpoint"]["note"].split("\n", 2)
    b["checkpoint"]["note"] = f"{origin}\n{int(size) + 1}\n{rest}"
    return "checkpoint.note", "signature does not verify"


def _mutate_checkpoint_signature(b):
    text, _, line = b["checkpoint"]["note"].rpartition("\n— ")
    name, blob = line.rstrip("\n").split(" ")
    b["checkpoint"]["note"] = f"{text}\n— {name} {flip_b64(blob, 10)}\n"
    return "checkpoint.note", "signature does not verify"


def _mutate_entry_signature(b):
    i = position(b, "pledge.release")
    b["entries"][i]["signature"] = flip_b64(b["entries"][i]["signature"], 3)
    return f"entries[{i}].signature", "does not verify under key"


def _mutate_entry_key_id(b):
    b["entries"][0]["key_id"] = "00000000"
    return "entries[0].key_id", "unknown key 00000000"


def _mutate_holder(b):
    b["asset"]["holder"] = b["pledges"][1]["pledgee"]
    return "asset.holder", "the replay of its entries gives"


def _mutate_pledge_status(b):
    b["pledges"][1]["status"] = "released"
    return "pledges[1].status", "the bundle says 'released', the replay of its entries gives 'active'"


def _mutate_pledge_amount(b):
    b["pledges"][1]["amount"]["amount"] = "6000.00"
    return "pledges[1].amount.amount", "the replay of its entries gives '60000.00'"


def _mutate_entry_order(b):
    b["entries"][3], b["entries"][4] = b["entries"][4], b["entries"][3]
    b["proofs"][3], b["proofs"][4] = b["proofs"][4], b["proofs"][3]
    return "entries[4].seq", "entries must be in log order"


def _mutate_drop_release(b):
    i = position(b, "pledge.release")
    del b["entries"][i], b["proofs"][i]
    return "pledges[0].status", "the bundle says 'released', the replay of its entries gives 'active'"


def _mutate_geometry(b):
    b["parcel_geometry"]["coordinates"][0][1][0] += 0.001
    return "parcel_geometry", "sha256 of its RFC 8785 form"


def _mutate_method(b):
    b["method"]["parameters"]["pools"][0]["density_t_c_per_ha"] = 99.0
    return "method", "sha256 of its RFC 8785 form"


def _mutate_bundle_key(b):
    b["keys"][0]["vkey"] = b["keys"][0]["vkey"][:-6] + "AAAAA="
    return "keys[0].vkey", ""


TAMPERS = [
    pytest.param(_mutate_entry_payload, id="payload-byte"),
    pytest.param(_mutate_proof_hash, id="proof-hash"),
    pytest.param(_mutate_extra_proof_hash, id="proof-extra-hash"),
    pytest.param(_mutate_proof_index, id="proof-index"),
    pytest.param(_mutate_tree_size, id="tree-size"),
    pytest.param(_mutate_checkpoint_root, id="checkpoint-root"),
    pytest.param(_mutate_checkpoint_text, id="checkpoint-text"),
    pytest.param(_mutate_checkpoint_signature, id="checkpoint-signature"),
    pytest.param(_mutate_entry_signature, id="entry-signature"),
    pytest.param(_mutate_entry_key_id, id="entry-key-id"),
    pytest.param(_mutate_holder, id="holder"),
    pytest.param(_mutate_pledge_status, id="pledge-status"),
    pytest.param(_mutate_pledge_amount, id="pledge-amount"),
    pytest.param(_mutate_entry_order, id="entry-order"),
    pytest.param(_mutate_drop_release, id="entry-dropped"),
    pytest.param(_mutate_geometry, id="parcel-geometry"),
    pytest.param(_mutate_method, id="method-parameters"),
    pytest.param(_mutate_bundle_key, id="bundle-key"),
]


@pytest.mark.parametrize("mutate", TAMPERS)
def test_tampered_bundle_fails_naming_the_field(bundle, registry_key, mutate):
    tampered = copy.deepcopy(bundle)
    field, reason = mutate(tampered)
    with pytest.raises(BundleInvalidError) as caught:
        verify_bundle(tampered, trusted_keys=[registry_key])
    assert caught.value.field == field, str(caught.value)
    assert reason in caught.value.reason


def test_tampered_bundle_exits_1_naming_the_field(bundle, registry_key, tmp_path):
    tampered = copy.deepcopy(bundle)
    field, _ = _mutate_pledge_status(tampered)
    result = run_verifier(write(tmp_path, "bundle.json", tampered), "--key", registry_key)
    assert result.returncode == 1
    assert result.stderr.startswith(f"INVALID: {field}: the bundle says 'released'")


def test_unknown_key_fails(bundle, tmp_path):
    stranger = note.generate_signer("tanhui.local/test-registry").verifier.vkey
    result = run_verifier(write(tmp_path, "bundle.json", bundle), "--key", stranger)
    assert result.returncode == 1
    assert "INVALID: checkpoint.note: signature by unknown key" in result.stderr


def test_bundle_signed_by_a_forger_fails(bundle, registry_key):
    """A forger re-signs the checkpoint with a key of the registry's name: the bank's key does not know it."""
    forger = note.generate_signer("tanhui.local/test-registry")
    text = note.parse_note(bundle["checkpoint"]["note"])[0]
    forged = copy.deepcopy(bundle)
    forged["checkpoint"]["note"] = note.sign_note(text, [forger])
    forged["keys"] = [{"vkey": forger.verifier.vkey, "status": "current"}]
    with pytest.raises(BundleInvalidError, match=r"checkpoint\.note: signature by unknown key"):
        verify_bundle(forged, trusted_keys=[registry_key])


def test_consistent_trusted_checkpoint_passes(bundle, registry_key, tmp_path):
    earlier = Checkpoint.objects.order_by("tree_size").first()
    result = run_verifier(write(tmp_path, "bundle.json", bundle), "--key", registry_key,
                          "--trusted-checkpoint", write(tmp_path, "seen.note", earlier.note_text))
    assert result.returncode == 0, result.stderr
    assert f"consistent with the trusted checkpoint of size {earlier.tree_size}" in result.stdout


def test_inconsistent_trusted_checkpoint_fails(bundle, registry_key, tmp_path):
    """The registry showed the bank another history at an earlier size: same key, same size, another root."""
    earlier = Checkpoint.objects.order_by("tree_size").first()
    forked = note.format_checkpoint(note.Checkpoint("tanhui.local/test-registry", earlier.tree_size, b"\x07" * 32))
    seen = note.sign_note(forked, [signing_key_load()])
    result = run_verifier(write(tmp_path, "bundle.json", bundle), "--key", registry_key,
                          "--trusted-checkpoint", write(tmp_path, "seen.note", seen))
    assert result.returncode == 1
    assert f"INVALID: checkpoint: not consistent with the trusted checkpoint of size {earlier.tree_size}" in (
        result.stderr)


def test_trusted_checkpoint_without_proof_then_with_one_from_the_api(bundle, registry_key, scene, tmp_path):
    """A trusted size the bundle carries no proof from: refused, then accepted with /api/ledger/consistency/."""
    from ledger.log.tree import tree_root

    size = bundle["checkpoint"]["tree_size"] - 1
    assert size not in {p["old_size"] for p in bundle["consistency"]}
    seen = note.sign_note(note.format_checkpoint(note.Checkpoint("tanhui.local/test-registry", size,
                                                                 tree_root(tree_size=size))), [signing_key_load()])
    paths = [write(tmp_path, "bundle.json", bundle), "--key", registry_key,
             "--trusted-checkpoint", write(tmp_path, "seen.note", seen)]
    refused = run_verifier(*paths)
    assert refused.returncode == 1 and "INVALID: consistency: no proof" in refused.stderr
    proof = scene.roles.auditor.get(f"/api/ledger/consistency/?first={size}&second={size + 1}").json()
    accepted = run_verifier(*paths, "--consistency-proof", write(tmp_path, "proof.json", proof))
    assert accepted.returncode == 0, accepted.stderr


@pytest.mark.parametrize(("content", "key", "expected"), [
    pytest.param(None, "registry", "cannot read bundle", id="missing-file"),
    pytest.param("{not json", "registry", "not JSON", id="not-json"),
    pytest.param("[]", "registry", "a bundle is a JSON object", id="not-an-object"),
    pytest.param({"format": "tanhui-pledge-bundle/2"}, "registry", "format is 'tanhui-pledge-bundle/2'",
                 id="other-version"),
    pytest.param('{"format": "tanhui-pledge-bundle/1", "format": "x"}', "registry", "duplicate JSON key",
                 id="duplicate-key"),
    pytest.param("bundle", "not-a-key", "trusted key", id="bad-key"),
])
def test_unusable_input_exits_2(bundle, registry_key, tmp_path, content, key, expected):
    if content is None:
        path = str(tmp_path / "absent.json")
    else:
        path = write(tmp_path, "input.json", bundle if content == "bundle" else content)
    result = run_verifier(path, "--key", registry_key if key == "registry" else key)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr


def test_check_format_raises_format_error_for_missing_members(bundle, registry_key):
    broken = {k: v for k, v in bundle.items() if k != "proofs"}
    with pytest.raises(BundleFormatError, match="proofs is missing"):
        verify_bundle(broken, trusted_keys=[registry_key])


def test_pure_modules_import_without_django_web3_or_rfc8785():
    code = ("import sys, pkgutil, importlib, ledger.core, ledger.verifier.checks, ledger.verifier.cli, "
            "ledger.bundles.certificate; "
            "[importlib.import_module(f'ledger.core.{m.name}') for m in pkgutil.iter_modules(ledger.core.__path__)]; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'web3', 'rfc8785')); "
            "print(bad); sys.exit(1 if bad else 0)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_proof_reads_as_a_c2sp_tlog_proof(bundle):
    from ledger.verifier.checks import tlog_proof_text

    text = tlog_proof_text(bundle, 2)
    head, _, signed_note = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[:2] == ["c2sp.org/tlog-proof@v1", f"index {bundle['entries'][2]['seq']}"]
    assert lines[2:] == bundle["proofs"][2]["hashes"]
    assert signed_note == bundle["checkpoint"]["note"]


@pytest.mark.django_db
def test_entry_bytes_are_rfc8785_of_the_documented_object(bundle):
    """The verifier rebuilds each entry's bytes as docs/ledger.md defines them; the oracle is the rfc8785 package
    over {seq, kind, payload, timestamp, prev_hash as hex}, and the RFC 6962 leaf hash of those bytes."""
    for entry in bundle["entries"]:
        document = {"seq": entry["seq"], "kind": entry["kind"], "payload": entry["payload"],
                    "timestamp": entry["timestamp"], "prev_hash": base64.b64decode(entry["prev_hash"]).hex()}
        want = rfc8785.dumps(document)
        assert entry_bytes(entry) == want
        assert hashlib.sha256(b"\x00" + want).digest() == base64.b64decode(entry["hash"])
