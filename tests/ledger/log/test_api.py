"""The ledger's REST API: public keys and checkpoints, authenticated entries and proofs, problem+json errors."""

import base64

import pytest
from rest_framework.test import APIClient

from ledger.core import merkle, note
from ledger.log.services import checkpoint_sign_latest, entry_append
from tests.ledger.reference_tree import ref_mth, ref_path, ref_proof

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ledger.urls")]


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


@pytest.fixture
def ledger7():
    leaves = [bytes(entry_append(kind="test.note", payload={"asset": "A-1", "n": n}).hash) for n in range(7)]
    checkpoint_sign_latest(force=True)
    return leaves


def test_checkpoint_and_keys_are_public(ledger7):
    client = APIClient()
    keys = client.get("/api/ledger/keys/").json()
    assert [k["current"] for k in keys] == [True]
    verifier = note.parse_verifier_key(keys[0]["vkey"])

    text = client.get("/api/ledger/checkpoint/", HTTP_ACCEPT="text/plain")
    assert text.status_code == 200 and text["Content-Type"].startswith("text/plain")
    opened = note.open_note(text.content.decode(), [verifier])
    assert note.parse_checkpoint(opened.text) == note.Checkpoint("tanhui.local/test-registry", 7, ref_mth(ledger7))

    body = client.get("/api/ledger/checkpoint/").json()
    assert body["tree_size"] == 7
    assert _b64(body["root_hash"]) == ref_mth(ledger7)
    assert body["note"] == text.content.decode()

    by_size = client.get("/api/ledger/checkpoints/?size=7").json()
    assert [c["tree_size"] for c in by_size["results"]] == [7]
    assert client.get("/api/ledger/checkpoints/").json()["count"] == 1


def test_entries_need_authentication(ledger7):
    response = APIClient().get("/api/ledger/entries/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_entries_paged_and_one_entry(api_user, ledger7):
    _, client = api_user("auditor")
    page = client.get("/api/ledger/entries/?from=2&to=5&limit=3").json()
    assert page["count"] == 4
    assert [e["seq"] for e in page["results"]] == [2, 3, 4]
    assert _b64(page["results"][0]["prev_hash"]) == ledger7[1]
    one = client.get("/api/ledger/entries/6/").json()
    assert _b64(one["hash"]) == ledger7[6]
    assert one["payload"] == {"asset": "A-1", "n": 6}


def test_inclusion_proof_verifies_against_the_signed_checkpoint(api_user, ledger7):
    _, client = api_user("bank")
    body = client.get("/api/ledger/entries/2/proof/").json()
    assert body["tree_size"] == 7
    proof = [_b64(h) for h in body["proof"]]
    assert proof == ref_path(2, ledger7)
    checkpoint = note.parse_checkpoint(note.parse_note(body["checkpoint"])[0])
    assert merkle.verify_inclusion(2, 7, _b64(body["leaf_hash"]), proof, checkpoint.root_hash)
    smaller = client.get("/api/ledger/entries/2/proof/?tree_size=5").json()
    assert [_b64(h) for h in smaller["proof"]] == ref_path(2, ledger7[:5])
    assert smaller["checkpoint"] is None


def test_consistency_proof(api_user, ledger7):
    _, client = api_user("exchange")
    body = client.get("/api/ledger/consistency/?first=3&second=7").json()
    assert [_b64(h) for h in body["proof"]] == ref_proof(3, ledger7)


@pytest.mark.parametrize(("url", "status", "detail"), [
    ("/api/ledger/entries/99/", 404, "no entry 99: the ledger holds 7 entries (seq 0..6)"),
    ("/api/ledger/entries/99/proof/", 404, "no entry 99: the ledger holds 7 entries (seq 0..6)"),
    ("/api/ledger/entries/6/proof/?tree_size=6", 422, "entry 6 is not in a tree of size 6; want 0 <= seq < tree_size"),
    ("/api/ledger/entries/1/proof/?tree_size=9", 422, "tree_size 9 is beyond the ledger's size 7"),
    ("/api/ledger/entries/1/proof/?tree_size=x", 400, "tree_size: A valid integer is required."),
    ("/api/ledger/consistency/?first=5&second=3", 400, "second: second=3 is below first=5"),
    ("/api/ledger/consistency/?first=0&second=3", 400,
     "first: Ensure this value is greater than or equal to 1."),
    ("/api/ledger/consistency/?first=3&second=8", 422, "second 8 is beyond the ledger's size 7"),
    ("/api/ledger/entries/?from=5&to=2", 400, "to: to=2 is below from=5"),
    ("/api/ledger/checkpoints/?size=3", 404, "no checkpoint of size 3; nearest signed sizes: none below, 7 above"),
])
def test_bad_parameters_are_problems(api_user, ledger7, url, status, detail):
    _, client = api_user("auditor")
    response = client.get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == detail


def test_no_checkpoint_yet_is_404():
    response = APIClient().get("/api/ledger/checkpoint/", HTTP_ACCEPT="text/plain")
    assert response.status_code == 404
    assert response.json()["detail"] == "no checkpoint has been signed yet"


def test_schema_stays_valid():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/ledger/entries/{seq}/proof/" in response.json()["paths"]
