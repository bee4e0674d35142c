"""Webhooks: HMAC-SHA256 signed JSON to loopback or configured hosts, retried with exponential backoff, logged."""

import hashlib
import hmac
import json

import pytest

from ledger.models import WebhookDelivery, WebhookSubscription
from ledger.webhooks import services as webhooks
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.django_db


class Receiver(LoopbackServer):
    """A tiny HTTP server on 127.0.0.1 that records each POST and answers with the next status in `statuses`."""

    def __init__(self, statuses=()):
        self.statuses, self.received = list(statuses), []
        super().__init__(self._answer, path="/hooks/tanhui")

    def _answer(self, path, headers, body):
        self.received.append((headers, body))
        return (self.statuses.pop(0) if self.statuses else 204), None, b""


def verify(secret: str, headers: dict, body: bytes) -> dict:
    """What a receiver does: recompute HMAC-SHA256(secret, t + "." + body) and compare with v1."""
    fields = dict(part.split("=", 1) for part in headers["Tanhui-Signature"].split(","))
    want = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], want)
    return json.loads(body)


def test_subscribe_and_receive_signed_events(api_user, django_capture_on_commit_callbacks):
    _, bureau = api_user("bureau")
    _, exchange = api_user("exchange")
    with Receiver() as receiver:
        created = exchange.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["party.create"]},
                                format="json")
        assert created.status_code == 201, created.json()
        secret = created.json()["secret"]
        assert "secret" not in exchange.get("/api/webhooks/").json()["results"][0]
        with django_capture_on_commit_callbacks(execute=True):
            party = bureau.post("/api/parties/", {"kind": "household", "name": "Wang household"}, format="json")
        assert len(receiver.received) == 1
        headers, body = receiver.received[0]
        event = verify(secret, headers, body)
    assert headers["Tanhui-Event"] == "party.create"
    assert event["event"] == "party.create" and event["seq"] == 0 and len(event["entry_hash"]) == 64
    assert event["payload"] == {"party": party.json()["id"], "kind": "household", "name": "Wang household",
                                "uscc": None}
    log = exchange.get(f"/api/webhooks/{created.json()['id']}/deliveries/").json()["results"]
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("delivered", 1, 204)]


def test_failures_are_retried_with_exponential_backoff_and_logged(api_user, settings,
                                                                  django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_MAX_ATTEMPTS = 10, 5
    _, bureau = api_user("bureau")
    _, bank = api_user("bank")
    with Receiver(statuses=[500, 503, 200]) as receiver:
        sub = bank.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["*"]}, format="json").json()
        with django_capture_on_commit_callbacks(execute=True):
            bureau.post("/api/parties/", {"kind": "household", "name": "Li household"}, format="json")
    assert len(receiver.received) == 3
    log = bank.get(f"/api/webhooks/{sub['id']}/deliveries/").json()["results"][0]
    assert log["status"] == "delivered" and log["attempts"] == 3
    assert [(a["number"], a["status_code"], a["retry_in_s"]) for a in log["attempt_log"]] == [
        (1, 500, 10), (2, 503, 20), (3, 200, None)]
    # every attempt carries the same event, freshly signed
    assert len({body for _, body in receiver.received}) == 1


def test_a_delivery_gives_up_after_the_last_attempt(api_user, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_MAX_ATTEMPTS = 1, 3
    _, bureau = api_user("bureau")
    _, bank = api_user("bank")
    with Receiver(statuses=[500] * 10) as receiver:
        bank.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["*"]}, format="json")
        with django_capture_on_commit_callbacks(execute=True):
            bureau.post("/api/parties/", {"kind": "household", "name": "Li household"}, format="json")
    assert len(receiver.received) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 500")


def test_backoff_doubles_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_RETRY_MAX_S = 10, 3600
    assert [webhooks.webhook_retry_delay_s(n) for n in range(1, 11)] == [
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]


@pytest.mark.parametrize("url", ["http://example.com/hook", "http://10.0.0.5/hook", "ftp://127.0.0.1/x",
                                 "http://169.254.169.254/latest"])
def test_other_hosts_are_refused_with_422(api_user, url):
    _, bank = api_user("bank")
    response = bank.post("/api/webhooks/", {"url": url, "event_kinds": ["*"]}, format="json")
    assert response.status_code in (400, 422), response.json()
    if response.status_code == 422:
        assert response.json()["url"] == url and response.json()["type"] == "/problems/webhook-url-refused"
    assert WebhookSubscription.objects.count() == 0


def test_configured_hosts_and_unknown_kinds(api_user, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.exchange.test"]
    _, bank = api_user("bank")
    assert bank.post("/api/webhooks/", {"url": "https://hooks.exchange.test/x", "event_kinds": ["asset.transfer"]},
                     format="json").status_code == 201
    bad = bank.post("/api/webhooks/", {"url": "http://localhost:1/x", "event_kinds": ["asset.burn"]}, format="json")
    assert bad.status_code == 422 and "asset.burn" in bad.json()["detail"]


def _pending_delivery(url: str, *, created_minutes_ago: int):
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    owner = get_user_model().objects.create(username=f"owner-{WebhookSubscription.objects.count()}")
    subscription = WebhookSubscription.objects.create(owner=owner, url=url, event_kinds=["*"], secret="s" * 64)
    delivery = WebhookDelivery.objects.create(subscription=subscription, entry_seq=WebhookDelivery.objects.count(),
                                              event_kind="party.create", event={"event": "party.create"})
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(minutes=created_minutes_ago))
    return delivery


def test_deliveries_whose_next_attempt_is_overdue_are_stranded(settings):
    from datetime import timedelta

    from django.utils import timezone

    from ledger.models import WebhookAttempt

    settings.WEBHOOK_STRANDED_AFTER_S = 600
    url = "http://127.0.0.1:9/hooks"
    never_tried_old = _pending_delivery(url, created_minutes_ago=11)   # due at creation, 11 min > 10 min grace
    never_tried_new = _pending_delivery(url, created_minutes_ago=9)
    waiting = _pending_delivery(url, created_minutes_ago=120)          # last attempt 30 min ago said "wait 1 h"
    overdue = _pending_delivery(url, created_minutes_ago=120)          # last attempt 30 min ago said "wait 5 min"
    for delivery, wait_s in ((waiting, 3600), (overdue, 300)):
        attempt = WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=500, retry_in_s=wait_s)
        WebhookAttempt.objects.filter(pk=attempt.pk).update(attempted_at=timezone.now() - timedelta(minutes=30))
    delivered = _pending_delivery(url, created_minutes_ago=120)
    WebhookDelivery.objects.filter(pk=delivered.pk).update(status=WebhookDelivery.DELIVERED)
    assert webhooks.webhook_deliveries_stranded() == [never_tried_old.id, overdue.id]
    assert never_tried_new.id not in webhooks.webhook_deliveries_stranded()


def test_the_sweep_delivers_what_was_stranded(django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        stranded = _pending_delivery(receiver.url, created_minutes_ago=60)
        with django_capture_on_commit_callbacks(execute=True):  # through the outbox, published once it commits
            assert webhooks.webhook_deliveries_resend_stranded() == [stranded.id]
        assert len(receiver.received) == 1
    stranded.refresh_from_db()
    assert (stranded.status, stranded.attempts) == ("delivered", 1)
    assert webhooks.webhook_deliveries_resend_stranded() == []


# --- faults: the broker out, duplicate tasks, the backoff in the outbox --------------------------------------------

def test_a_write_with_the_broker_down_is_answered_and_its_webhook_goes_out_once_it_is_back(
        api_user, broker, settings, django_capture_on_commit_callbacks):
    """The party commits and is answered 201 (not 500, and not after 19 s); its webhook waits in the outbox; a
    client that retries with its Idempotency-Key gets the stored answer and nothing is written twice."""
    import time

    from ledger.models import Outbox, Party
    from ledger.webhooks.tasks import ledger_outbox_send_pending_task

    settings.OUTBOX_RETRY_AFTER_S = 60
    _, bureau = api_user("bureau")
    _, bank = api_user("bank")
    with Receiver() as receiver:
        bank.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["party.create"]}, format="json")
        broker.down()
        body = {"kind": "household", "name": "Zhao household"}
        timings = []
        for name, key in (("first", "party-zhao-1"), ("retry", "party-zhao-1"), ("other", "party-qian-1")):
            started = time.monotonic()
            with django_capture_on_commit_callbacks(execute=True):
                response = bureau.post("/api/parties/", dict(body, name=f"{name} household") if name == "other"
                                       else body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            timings.append(time.monotonic() - started)
            assert response.status_code == 201, response.content
        assert response.json()["name"] == "other household"
        assert Party.objects.filter(name="Zhao household").count() == 1
        assert timings[0] < 3 and timings[2] < 0.5, timings  # after one failure the broker is left alone a while
        assert receiver.received == []
        rows = list(Outbox.objects.order_by("id"))
        assert [(r.task, r.args[1], r.sent_at) for r in rows] == [("ledger.webhook_deliver", 1, None)] * 2
        assert "Connection refused" in rows[0].last_error and rows[1].last_error.startswith("not tried")
        broker.up()
        with django_capture_on_commit_callbacks(execute=True):
            assert ledger_outbox_send_pending_task.apply().get() == 2
        assert sorted(json.loads(b)["payload"]["name"] for _, b in receiver.received) == [
            "Zhao household", "other household"]
    assert WebhookDelivery.objects.filter(status="delivered").count() == 2


def test_a_task_for_an_attempt_already_made_does_nothing(api_user, django_capture_on_commit_callbacks):
    _, bureau = api_user("bureau")
    _, bank = api_user("bank")
    with Receiver(statuses=[500, 204]) as receiver:
        bank.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["*"]}, format="json")
        with django_capture_on_commit_callbacks(execute=True):
            bureau.post("/api/parties/", {"kind": "household", "name": "Sun household"}, format="json")
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, len(receiver.received)) == ("delivered", 2, 2)
        for attempt in (1, 2, 3):  # redelivered messages, a resend that raced the real one
            assert webhooks.webhook_deliver(delivery_id=delivery.id, attempt=attempt)[1] is None
        assert len(receiver.received) == 2
    delivery.refresh_from_db()
    assert delivery.attempts == 2


def test_each_next_attempt_is_due_after_the_backoff_the_log_records(api_user, settings,
                                                                   django_capture_on_commit_callbacks):
    """The outbox row of attempt n + 1 is due retry_in_s after attempt n, the wait its log entry states (the
    tests' inline mode runs it at once; a worker, or the in-process runner, waits until then)."""
    from ledger.models import Outbox

    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_MAX_ATTEMPTS = 10, 4
    _, bureau = api_user("bureau")
    _, bank = api_user("bank")
    with Receiver(statuses=[500, 500, 500, 500]) as receiver:
        bank.post("/api/webhooks/", {"url": receiver.url, "event_kinds": ["*"]}, format="json")
        with django_capture_on_commit_callbacks(execute=True):
            bureau.post("/api/parties/", {"kind": "household", "name": "Zhou household"}, format="json")
    delivery = WebhookDelivery.objects.get()
    attempts = list(delivery.attempt_log.order_by("number"))
    rows = {r.args[1]: r for r in Outbox.objects.all()}
    assert sorted(rows) == [1, 2, 3, 4] and rows[1].not_before is None
    assert [a.retry_in_s for a in attempts] == [10, 20, 40, None]
    for attempt in attempts[:-1]:
        wait_s = (rows[attempt.number + 1].not_before - attempt.attempted_at).total_seconds()
        assert attempt.retry_in_s <= wait_s < attempt.retry_in_s + 1
    assert delivery.status == "failed"


def test_the_checkpoint_request_with_the_broker_down_is_logged_not_raised(broker, settings, caplog,
                                                                         django_capture_on_commit_callbacks):
    from ledger.log.services import entry_append

    settings.LEDGER_CHECKPOINT_INTERVAL_S = 0
    broker.down()
    with django_capture_on_commit_callbacks(execute=True):
        entry_append(kind="test.note", payload={})
    assert "checkpoint request not sent" in caplog.text
