"""The doorways to anchoring: the beat task, GET /api/ledger/anchors/, /healthz, and the beat schedule."""

import base64
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connections

from ledger.anchoring.services import anchoring_tick
from ledger.anchoring.tasks import anchoring_tick_task
from ledger.models import Anchor

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_task_without_rpc_url_logs_that_anchoring_is_off_and_returns(checkpoint_of, caplog):
    checkpoint_of(3)
    with caplog.at_level(logging.INFO, logger="ledger.anchoring.services"):
        result = anchoring_tick_task.delay().get()
    assert result == {"status": "off", "detail": "anchoring is off: ANCHOR_RPC_URL is unset"}
    assert "anchoring is off: ANCHOR_RPC_URL is unset" in caplog.messages
    assert Anchor.objects.count() == 0


@pytest.mark.django_db
def test_task_anchors_through_celery(evm, checkpoint_of):
    checkpoint_of(3)
    assert anchoring_tick_task.delay().get() == {"status": "on", "created": 3, "sent": 1, "tracked": 0}


@pytest.mark.django_db
def test_anchors_api_lists_anchors_anonymously(evm, checkpoint_of, anchor_key, client):
    account, _ = anchor_key
    checkpoint = checkpoint_of(4)
    anchoring_tick()
    anchor = Anchor.objects.get()
    response = client.get("/api/ledger/anchors/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["anchoring"] == {"enabled": True, "confirmations": 3, "interval_s": body["anchoring"]["interval_s"],
                                 "sender": account.address}
    [row] = body["results"]
    assert row["tree_size"] == 4
    assert base64.b64decode(row["root_hash"]) == bytes(checkpoint.root_hash)
    assert (row["status"], row["tx_hash"], row["chain_id"], row["nonce"]) == ("sent", anchor.tx_hash,
                                                                             evm.eth.chain_id, 0)
    assert row["block_number"] is None  # not tracked yet


@pytest.mark.django_db
def test_anchors_api_says_when_anchoring_is_off(client):
    body = client.get("/api/ledger/anchors/").json()
    assert body["count"] == 0
    assert body["anchoring"] == {"enabled": False, "detail": "anchoring is off: ANCHOR_RPC_URL is unset"}


@pytest.mark.django_db
def test_healthz_reports_anchoring_off_without_rpc_url(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["anchoring"] == {"status": "off", "detail": "anchoring is off: ANCHOR_RPC_URL is unset"}


@pytest.mark.django_db
def test_healthz_reports_anchoring_ok_then_degraded_never_down(evm, checkpoint_of, client, settings):
    checkpoint_of(4)
    anchoring_tick()
    body = client.get("/healthz").json()
    assert (body["status"], body["checks"]["anchoring"]) == ("ok", {"status": "ok"})

    checkpoint_of(5)
    Anchor.objects.update(status="final")
    settings.ANCHOR_RPC_URL = "http://127.0.0.1:1/"  # the node goes away
    anchoring_tick()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["detail"] == "degraded: anchoring"
    check = body["checks"]["anchoring"]
    assert check["status"] == "degraded"
    assert check["detail"].startswith("anchor of checkpoint 5 is pending: RPC unreachable: ConnectionError: ")
    assert check["faults"] == 1
    assert body["checks"]["database"] == {"status": "ok"}


def _tick_in_thread(barrier, results, errors):
    try:
        barrier.wait()
        results.append(anchoring_tick())
    except Exception as exc:  # reported to the test, which fails listing them
        errors.append(repr(exc))
    finally:
        connections.close_all()


@pytest.mark.postgres  # SQLite's shared-cache test database refuses concurrent writers ("table is locked")
@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_create_one_anchor_and_send_one_transaction(evm, checkpoint_of, anchor_key):
    account, _ = anchor_key
    checkpoint_of(6)
    barrier, results, errors = threading.Barrier(2), [], []
    threads = [threading.Thread(target=_tick_in_thread, args=(barrier, results, errors)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted((r["created"] is not None, r["sent"]) for r in results) in ([(False, 0), (True, 1)],
                                                                              [(False, 1), (True, 0)])
    assert list(Anchor.objects.values_list("tree_size", "status", "attempts")) == [(6, "sent", 1)]
    assert evm.eth.get_transaction_count(account.address) == 1  # one anchor transaction on chain


@pytest.mark.django_db
def test_the_database_refuses_a_second_anchor_for_one_checkpoint(evm, checkpoint_of):
    from django.db import IntegrityError, transaction

    checkpoint = checkpoint_of(2)
    anchoring_tick()
    anchor = Anchor.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Anchor.objects.create(checkpoint=checkpoint, tree_size=2, root_hash=bytes(checkpoint.root_hash),
                              next_attempt_at=anchor.next_attempt_at)
    assert Anchor.objects.count() == 1


@pytest.mark.django_db
def test_an_anchor_claimed_by_one_sender_is_not_sent_by_another(evm, checkpoint_of, anchor_key):
    from ledger.anchoring.services import anchor_latest_checkpoint, anchor_send

    account, _ = anchor_key
    checkpoint_of(2)
    created = anchor_latest_checkpoint()
    stale_copy = Anchor.objects.get(pk=created.pk)  # what a second worker read at the same moment
    assert anchor_send(anchor=created).status == "sent"
    assert anchor_send(anchor=stale_copy).status == "pending"  # lost the claim: returned untouched
    assert Anchor.objects.get().attempts == 1
    assert evm.eth.get_transaction_count(account.address) == 1


@pytest.mark.parametrize(("rpc_url", "schedule"), [
    ("", {}),
    ("tester://demo", {"ledger-anchoring-tick": {"task": "ledger.anchoring_tick", "schedule": 120,
                                                 "options": {"expires": 120}}}),
])
def test_beat_schedule_only_when_rpc_url_is_set(rpc_url, schedule, tmp_path):
    entries = _beat_schedule(tmp_path, ANCHOR_RPC_URL=rpc_url, ANCHOR_INTERVAL_S="120")
    assert {name: entry for name, entry in entries.items() if name == "ledger-anchoring-tick"} == schedule


@pytest.mark.parametrize("broker_url", ["", "redis://127.0.0.1:6379/9"])
def test_sweeps_are_scheduled_with_or_without_a_broker(broker_url, tmp_path):
    """Beat runs them with a broker, the in-process runner (config.celery) without one."""
    def every(task, seconds):
        return {"task": task, "schedule": seconds, "options": {"expires": seconds}}

    assert _beat_schedule(tmp_path, CELERY_BROKER_URL=broker_url, WEBHOOK_SWEEP_INTERVAL_S="60",
                          OUTBOX_SWEEP_INTERVAL_S="7", RUN_SWEEP_INTERVAL_S="30",
                          LEDGER_CHECKPOINT_INTERVAL_S="45") == {
        "accounting-outbox-sweep": every("accounting.outbox_send_pending", 7),
        "ledger-outbox-sweep": every("ledger.outbox_send_pending", 7),
        "accounting-stale-run-sweep": every("accounting.runs_requeue_stale", 30),
        "ledger-webhook-sweep": every("ledger.webhook_deliveries_resend_stranded", 60),
        "ledger-checkpoint-sweep": every("ledger.checkpoint_sign_latest", 45),
    }


def _beat_schedule(tmp_path, **settings_env) -> dict:
    """CELERY_BEAT_SCHEDULE as a fresh process computes it from the environment (no broker unless given)."""
    code = ("import json, django; from django.conf import settings; django.setup(); "
            "print(json.dumps(settings.CELERY_BEAT_SCHEDULE, sort_keys=True))")
    env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "ANCHOR_RPC_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", TANHUI_VAR_DIR=str(tmp_path), **settings_env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])
