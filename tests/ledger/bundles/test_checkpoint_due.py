"""A bundle (and its certificate) is only ever proven to a checkpoint already signed: a GET never signs one. When none
covers the asset's entries, the answer is 409 `checkpoint-due` with Retry-After and a checkpoint is requested the way
appends request one. Bundles carry an ETag computed without building them, and answer If-None-Match with 304."""

import hashlib
import json
import logging
from decimal import Decimal

import pytest

from ledger.bundles import services as bundles
from ledger.log.models import Checkpoint, Entry
from ledger.log.services import CHECKPOINT_TASK_NAME, checkpoint_sign_latest
from ledger.registry import services as registry

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int]:
    return Checkpoint.objects.count(), Entry.objects.count()


def _pledge_more(scene):
    """A change to the asset that no checkpoint covers yet."""
    registry.pledge_create(asset=scene.asset, pledgee=scene.roles.bank_party, amount=Decimal("1000"), currency="CNY",
                           term_months=12)


@pytest.mark.parametrize("path", ["bundle/", "certificate.pdf"])
def test_no_covering_checkpoint_is_409_checkpoint_due_and_nothing_is_written(scene, checkpoint_requests, path):
    _pledge_more(scene)
    before = counts()
    response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/{path}")
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/checkpoint-due"
    latest = Checkpoint.objects.latest("tree_size").tree_size
    assert problem["latest_tree_size"] == latest and problem["min_tree_size"] == Entry.objects.count()
    # the latest checkpoint was signed just now and the interval is 3600 s: due at its end, plus pick-up time
    assert 3590 < int(response["Retry-After"]) == problem["retry_after_s"] <= 3600 + 1 + bundles.CHECKPOINT_PICKUP_S
    assert counts() == before  # the read signed nothing

    [(delay_s, _)] = checkpoint_requests  # one checkpoint was requested, for when the interval allows it
    assert 3590 < delay_s <= 3601
    again = scene.roles.auditor.get(f"/api/assets/{scene.asset.code}/{path}")
    assert again.status_code == 409 and len(checkpoint_requests) == 1  # a crowd of reads sends one request
    assert counts() == before


def test_the_requested_checkpoint_makes_the_bundle_available(scene, checkpoint_requests, settings):
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0  # the interval is over: the request is for now
    _pledge_more(scene)
    assert scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/").status_code == 409
    [(delay_s, sign)] = checkpoint_requests
    assert delay_s == 0
    sign()  # what the timer thread (or the Celery task) does
    response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/")
    assert response.status_code == 200
    assert json.loads(response.content)["checkpoint"]["tree_size"] == Entry.objects.count()


def test_with_a_broker_the_checkpoint_task_is_sent_once_with_a_countdown(scene, monkeypatch):
    from config.celery import app

    sent = []
    app.conf.task_always_eager = False  # as with a broker (the autouse _celery_mode fixture puts it back)
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    _pledge_more(scene)
    for _ in range(3):
        assert scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/").status_code == 409
    [(name, options)] = sent
    assert name == CHECKPOINT_TASK_NAME and 3590 < options["countdown"] <= 3601 and options["retry"] is False


def test_a_broker_that_is_down_still_gets_409_and_is_asked_again_soon(scene, monkeypatch, caplog):
    from config.celery import app

    def refuse(name, **options):
        raise ConnectionRefusedError("broker down")

    app.conf.task_always_eager = False  # as with a broker (the autouse _celery_mode fixture puts it back)
    monkeypatch.setattr(app, "send_task", refuse)
    _pledge_more(scene)
    with caplog.at_level(logging.WARNING, logger="ledger.bundles.services"):
        response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/")
    assert response.status_code == 409 and "could not request a checkpoint" in caplog.text
    now = bundles.time.monotonic()
    assert bundles._requested_until[0] <= now + bundles.CHECKPOINT_REQUEST_FAILED_WAIT_S


def test_the_bundle_etag_answers_304_while_the_asset_and_its_checkpoint_are_unchanged(scene):
    url = f"/api/assets/{scene.asset.code}/bundle/"
    first = scene.roles.bank.get(url)
    assert first.status_code == 200 and first["Cache-Control"] == "private, no-cache"
    size = json.loads(first.content)["checkpoint"]["tree_size"]
    last = Entry.objects.for_asset(scene.asset.code).last().seq
    assert first["ETag"] == f'"b-{scene.asset.code}-{last}-{size}-none"'
    assert first["Tanhui-Bundle-SHA256"] == hashlib.sha256(first.content).hexdigest()
    cached = scene.roles.auditor.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert cached.status_code == 304 and cached.content == b"" and cached["ETag"] == first["ETag"]

    # Other entries and a newer checkpoint: the latest bundle is proven to it, while the bundle at the first
    # checkpoint, of an unchanged asset, is the same bytes
    registry.party_create(kind="household", name="Wang household")
    checkpoint_sign_latest(force=True)
    newer = scene.roles.bank.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert newer.status_code == 200 and newer["ETag"] != first["ETag"]
    pinned = scene.roles.bank.get(f"{url}?tree_size={size}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert pinned.status_code == 304

    _pledge_more(scene)
    checkpoint_sign_latest(force=True)
    moved = scene.roles.bank.get(url, HTTP_IF_NONE_MATCH=newer["ETag"])
    assert moved.status_code == 200 and moved["ETag"] not in (first["ETag"], newer["ETag"])


def test_a_bundle_at_a_fixed_tree_size_is_long_lived_and_the_certificate_weak(scene, settings):
    first = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/")
    size = json.loads(first.content)["checkpoint"]["tree_size"]
    pinned = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/?tree_size={size}")
    assert pinned.content == first.content and pinned["ETag"] == first["ETag"]
    assert pinned["Cache-Control"] == f"private, max-age={settings.API_CACHE_BUNDLE_MAX_AGE_S}"
    certificate = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/certificate.pdf")
    assert certificate["ETag"] == "W/" + first["ETag"]
    assert scene.roles.bank.get(f"/api/assets/{scene.asset.code}/certificate.pdf",
                                HTTP_IF_NONE_MATCH=certificate["ETag"]).status_code == 304


REAL_IN_PROCESS_LATER = bundles._in_process_later  # before the autouse fixture replaces it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_timer_thread_signs_the_requested_checkpoint(scene, monkeypatch, settings):
    import time

    monkeypatch.setattr(bundles, "_in_process_later", REAL_IN_PROCESS_LATER)
    _pledge_more(scene)  # within the interval of the last checkpoint: the append's own request signs nothing
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0  # and now the interval is over
    wanted = Entry.objects.count()
    assert scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/").status_code == 409
    deadline = time.monotonic() + 10
    while not Checkpoint.objects.filter(tree_size=wanted).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Checkpoint.objects.filter(tree_size=wanted).exists()  # signed by the timer thread, not by the read
    assert scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/").status_code == 200
