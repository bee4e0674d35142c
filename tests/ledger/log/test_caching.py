"""HTTP caching of the ledger's reads: what a URL fixes (a checkpoint of a size, an entry, a proof between fixed sizes)
is `immutable`; the latest checkpoint and proofs to it are short-lived; each has an ETag computed without building
the answer, and If-None-Match with it answers 304. Public reads are `public`, the others `private`."""

import base64

import pytest
from rest_framework.test import APIClient

from ledger.core import merkle
from ledger.log.services import checkpoint_sign_latest, entry_append
from tests.ledger.reference_tree import ref_mth, ref_path, ref_proof

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ledger.urls")]
IMMUTABLE = "max-age=31536000, immutable"


@pytest.fixture
def ledger9():
    """Nine entries: a checkpoint of 7 and one of 9."""
    leaves = [bytes(entry_append(kind="test.note", payload={"n": n}).hash) for n in range(7)]
    checkpoint_sign_latest(force=True)
    leaves += [bytes(entry_append(kind="test.note", payload={"n": n}).hash) for n in range(7, 9)]
    checkpoint_sign_latest(force=True)
    return leaves


def test_the_latest_checkpoint_is_short_lived_and_each_representation_has_its_etag(ledger9, settings):
    client = APIClient()
    json_answer = client.get("/api/ledger/checkpoint/")
    text_answer = client.get("/api/ledger/checkpoint/", HTTP_ACCEPT="text/plain")
    for answer in (json_answer, text_answer):
        assert answer["Cache-Control"] == f"public, max-age={settings.API_CACHE_LATEST_MAX_AGE_S}"
        assert "Accept" in [v.strip() for v in answer["Vary"].split(",")]
    assert json_answer["ETag"] == '"cp-9"' and text_answer["ETag"] == '"cp-9-note"'
    assert client.get("/api/ledger/checkpoint/", HTTP_IF_NONE_MATCH='"cp-9"').status_code == 304
    # the note's tag does not stand for the JSON
    assert client.get("/api/ledger/checkpoint/", HTTP_IF_NONE_MATCH='"cp-9-note"').status_code == 200

    entry_append(kind="test.note", payload={"n": 9})
    checkpoint_sign_latest(force=True)
    newer = client.get("/api/ledger/checkpoint/", HTTP_IF_NONE_MATCH='"cp-9"')
    assert newer.status_code == 200 and newer.json()["tree_size"] == 10


def test_a_checkpoint_by_size_is_immutable(ledger9):
    client = APIClient()
    answer = client.get("/api/ledger/checkpoints/?size=7")
    assert answer["Cache-Control"] == f"public, {IMMUTABLE}" and answer["ETag"] == '"cps-7"'
    assert client.get("/api/ledger/checkpoints/?size=7", HTTP_IF_NONE_MATCH='"cps-7"').status_code == 304
    missing = client.get("/api/ledger/checkpoints/?size=8")
    assert missing.status_code == 404 and not missing.has_header("ETag")


def test_entries_and_proofs_at_fixed_sizes_are_immutable_and_private(api_user, ledger9):
    _, client = api_user("bank")
    entry = client.get("/api/ledger/entries/3/")
    assert entry["Cache-Control"] == f"private, {IMMUTABLE}" and entry["ETag"] == '"e-3"'
    assert client.get("/api/ledger/entries/3/", HTTP_IF_NONE_MATCH='"e-3"').status_code == 304

    at_7 = client.get("/api/ledger/entries/3/proof/?tree_size=7")
    assert at_7["Cache-Control"] == f"private, {IMMUTABLE}" and at_7["ETag"] == '"ip-3-7-signed"'
    assert [base64.b64decode(h) for h in at_7.json()["proof"]] == ref_path(3, ledger9[:7])
    assert base64.b64decode(at_7.json()["root_hash"]) == ref_mth(ledger9[:7])
    # size 8 has no checkpoint of its own and never will (the latest signed one is 9): settled too
    at_8 = client.get("/api/ledger/entries/3/proof/?tree_size=8")
    assert at_8.json()["checkpoint"] is None and at_8["ETag"] == '"ip-3-8"'
    assert at_8["Cache-Control"] == f"private, {IMMUTABLE}"
    assert client.get("/api/ledger/entries/3/proof/?tree_size=8", HTTP_IF_NONE_MATCH='"ip-3-8"').status_code == 304

    latest = client.get("/api/ledger/entries/3/proof/")
    assert latest.json()["tree_size"] == 9 and latest["ETag"] == '"ip-3-9-signed"'
    assert latest["Cache-Control"].startswith("private, max-age=") and "immutable" not in latest["Cache-Control"]

    consistency = client.get("/api/ledger/consistency/?first=7&second=9")
    assert consistency["Cache-Control"] == f"private, {IMMUTABLE}" and consistency["ETag"] == '"cons-7-9"'
    assert [base64.b64decode(h) for h in consistency.json()["proof"]] == ref_proof(7, ledger9)
    assert merkle.verify_consistency(7, 9, ref_proof(7, ledger9), ref_mth(ledger9[:7]), ref_mth(ledger9))
    assert client.get("/api/ledger/consistency/?first=7&second=9",
                      HTTP_IF_NONE_MATCH='"cons-7-9"').status_code == 304


def test_a_proof_to_a_size_not_yet_signed_is_short_lived(api_user, ledger9):
    _, client = api_user("auditor")
    entry_append(kind="test.note", payload={"n": 9})  # size 10: may yet get a checkpoint of its own
    unsettled = client.get("/api/ledger/entries/3/proof/?tree_size=10")
    assert unsettled.json()["checkpoint"] is None and "immutable" not in unsettled["Cache-Control"]
    checkpoint_sign_latest(force=True)
    signed = client.get("/api/ledger/entries/3/proof/?tree_size=10", HTTP_IF_NONE_MATCH=unsettled["ETag"])
    assert signed.status_code == 200 and signed.json()["checkpoint"] is not None  # the tag said "no note"


def test_proof_errors_are_unchanged(api_user, ledger9):
    _, client = api_user("auditor")
    assert client.get("/api/ledger/entries/8/proof/?tree_size=8").status_code == 422  # seq outside the tree
    assert client.get("/api/ledger/entries/99/proof/").status_code == 404
    assert client.get("/api/ledger/entries/3/proof/?tree_size=99").status_code == 422
    assert client.get("/api/ledger/consistency/?first=3&second=99").status_code == 422


def test_the_entries_page_counts_from_the_log_head(api_user, ledger9):
    _, client = api_user("auditor")
    assert client.get("/api/ledger/entries/").json()["count"] == 9
    assert client.get("/api/ledger/entries/?from=4").json()["count"] == 5
    assert client.get("/api/ledger/entries/?from=2&to=5").json()["count"] == 4
    assert client.get("/api/ledger/entries/?from=20").json() == {"count": 0, "next": None, "previous": None,
                                                               "results": []}
