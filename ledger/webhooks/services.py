"""Webhooks: signed JSON for each registry ledger entry, sent to subscribers' URLs with exponential backoff.

A delivery is queued in the transaction that appends its entry (`webhook_deliveries_create`, called by the log
for every append), together with a row of the ledger's outbox for its first attempt; each failed attempt writes
the row of the next one, due after its backoff, in the transaction that logs it. The outbox publishes each row
after its commit, or later when the broker was down (accounting.outbox); without a broker, the in-process runner
makes the attempt on a thread of its own at its due time, never inside a request. Each task names its attempt,
and a task for an attempt already made does nothing. A beat sweep queues again deliveries whose task was lost.
"""

import hashlib
import hmac
import ipaddress
import json
import secrets
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounting.outbox import outbox_add
from ledger.core import codec, replay
from ledger.core.errors import gettext_noop
from ledger.log.models import Entry
from ledger.registry.errors import RegistryInputError
from ledger.webhooks.errors import WebhookURLError
from ledger.webhooks.models import Outbox, WebhookAttempt, WebhookDelivery, WebhookSubscription

WEBHOOK_DELIVER_TASK = "ledger.webhook_deliver"
WEBHOOK_RESEND_TASK = "ledger.webhook_deliveries_resend_stranded"
OUTBOX_SEND_TASK = "ledger.outbox_send_pending"
SIGNATURE_HEADER = "Tanhui-Signature"


def _webhook_host_allowed(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return host.lower() in {h.lower() for h in settings.WEBHOOK_ALLOWED_HOSTS}


def webhook_url_check(url: str) -> str:
    """`url` when it is http(s) to a loopback address or a host in WEBHOOK_ALLOWED_HOSTS; WebhookURLError else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError(gettext_noop("webhook URL must be http or https with a host, got %(url)r"), field="url",
                              url=url)
    if not _webhook_host_allowed(parts.hostname):
        raise WebhookURLError(gettext_noop("webhook host %(host)s is neither loopback nor in WEBHOOK_ALLOWED_HOSTS"),
                              field="url", url=url, host=parts.hostname)
    return url


def webhook_subscribe(*, owner, url: str, event_kinds: list[str]) -> WebhookSubscription:
    """Subscribe `url` to ledger events of `event_kinds` (registry kinds, or "*" for all)."""
    webhook_url_check(url)
    unknown = sorted(set(event_kinds) - set(replay.KINDS) - {"*"})
    if not event_kinds or unknown:
        raise RegistryInputError(gettext_noop("event_kinds must name some of %(kinds)s or '*'; unknown: %(unknown)s"),
                                 field="event_kinds", kinds=", ".join(replay.KINDS),
                                 unknown=", ".join(unknown) or "(none given)")
    return WebhookSubscription.objects.create(owner=owner, url=url, event_kinds=sorted(set(event_kinds)),
                                              secret=secrets.token_hex(32))


def webhook_event(entry: Entry) -> dict:
    return {"event": entry.kind, "seq": entry.seq, "entry_hash": bytes(entry.hash).hex(),
            "timestamp": codec.format_timestamp(entry.timestamp), "payload": entry.payload}


def _attempt_queue(delivery_id: int, attempt: int, *, not_before=None) -> bool:
    """Write the outbox row of attempt number `attempt` of `delivery_id`, in the caller's transaction; False when
    an unsent row for that attempt is already waiting."""
    return outbox_add(Outbox, task=WEBHOOK_DELIVER_TASK, args=[delivery_id, attempt], not_before=not_before,
                      key=f"delivery:{delivery_id}:{attempt}") is not None


def webhook_deliveries_create(*, entry: Entry) -> list[WebhookDelivery]:
    """Queue one delivery of `entry` per matching active subscription, with the outbox row of its first attempt,
    in the caller's transaction; the attempts are published when it commits."""
    if entry.kind not in replay.KINDS:
        return []
    deliveries = [WebhookDelivery(subscription=s, entry_seq=entry.seq, event_kind=entry.kind,
                                  event=webhook_event(entry))
                  for s in WebhookSubscription.objects.filter(active=True).order_by("id")
                  if entry.kind in s.event_kinds or "*" in s.event_kinds]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        for delivery_id in WebhookDelivery.objects.filter(entry_seq=entry.seq).values_list("id", flat=True):
            _attempt_queue(delivery_id, 1)
    return deliveries


def webhook_deliveries_stranded(*, now=None) -> list[int]:
    """Ids of pending deliveries whose next attempt is overdue by more than WEBHOOK_STRANDED_AFTER_S.

    The next attempt is due when the delivery is created (no attempt yet) or when the last attempt's wait
    (retry_in_s) ends. Overdue means its task was lost: a broker that dropped it, a worker that died, or a commit
    whose durability could not be confirmed, after which its webhooks are not sent (docs/ledger.md)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_STRANDED_AFTER_S)
    last_attempts = {a.delivery_id: a for a in WebhookAttempt.objects.filter(
        delivery__status=WebhookDelivery.PENDING).order_by("delivery_id", "number")}
    stranded = []
    for delivery in WebhookDelivery.objects.filter(status=WebhookDelivery.PENDING).order_by("id"):
        last = last_attempts.get(delivery.id)
        due = delivery.created_at if last is None else last.attempted_at + timedelta(seconds=last.retry_in_s or 0)
        if due + grace < now:
            stranded.append(delivery.id)
    return stranded


def webhook_deliveries_resend_stranded() -> list[int]:
    """Queue the next attempt again (through the outbox) for every stranded delivery; return their ids. If its
    task was only late, the first of the two to run makes the attempt and the other does nothing; a receiver may
    still see a delivery twice, as with any retry: the Tanhui-Delivery header tells."""
    resent = []
    for delivery in WebhookDelivery.objects.filter(id__in=webhook_deliveries_stranded()).order_by("id"):
        if _attempt_queue(delivery.id, delivery.attempts + 1):
            resent.append(delivery.id)
    return resent


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The Tanhui-Signature header: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_retry_delay_s(attempt: int) -> int:
    """Seconds to wait after failed attempt number `attempt` (1-based): base × 2**(attempt − 1), capped."""
    return min(settings.WEBHOOK_RETRY_BASE_S * 2 ** (attempt - 1), settings.WEBHOOK_RETRY_MAX_S)


def webhook_deliver(*, delivery_id: int, attempt: int | None = None) -> tuple[WebhookDelivery, int | None]:
    """Make attempt number `attempt` (default: the next) to deliver `delivery_id`; log it, and when it failed
    queue the next one after its backoff. Return (delivery, seconds until the next attempt, or None when
    delivered, given up after WEBHOOK_MAX_ATTEMPTS, not pending, or when attempt `attempt` was already made)."""
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    number = delivery.attempts + 1 if attempt is None else attempt
    if delivery.status != WebhookDelivery.PENDING or number != delivery.attempts + 1:
        return delivery, None
    subscription = delivery.subscription
    event = dict(delivery.event, delivery=delivery.id)
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    moment = int(timezone.now().timestamp())
    status_code, error = None, ""
    try:
        webhook_url_check(subscription.url)
        request = urllib.request.Request(subscription.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Tanhui-Webhook/1",
            "Tanhui-Event": delivery.event_kind, "Tanhui-Delivery": str(delivery.id),
            SIGNATURE_HEADER: webhook_signature(secret=subscription.secret, timestamp=moment, body=body)})
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_S) as response:
            status_code = response.status
    except urllib.error.HTTPError as failure:
        status_code, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError, WebhookURLError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    delivered = status_code is not None and 200 <= status_code < 300
    retry_in_s = None
    if not delivered and number < settings.WEBHOOK_MAX_ATTEMPTS:
        retry_in_s = webhook_retry_delay_s(number)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.attempts != number - 1:  # a second task for this attempt got there first and logged it
            return delivery, None
        WebhookAttempt.objects.create(delivery=delivery, number=number, status_code=status_code, error=error[:2000],
                                      retry_in_s=retry_in_s)
        delivery.attempts, delivery.last_status_code, delivery.last_error = number, status_code, error[:2000]
        if delivered:
            delivery.status, delivery.delivered_at = WebhookDelivery.DELIVERED, timezone.now()
        elif retry_in_s is None:
            delivery.status = WebhookDelivery.FAILED
        delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at"])
        if retry_in_s is not None:
            _attempt_queue(delivery.id, number + 1, not_before=timezone.now() + timedelta(seconds=retry_in_s))
    return delivery, retry_in_s
