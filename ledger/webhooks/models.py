"""Webhook subscriptions, their deliveries and each delivery's attempts (the registry's tables keep their names),
and the ledger's outbox of tasks to publish after commit."""

from django.conf import settings
from django.db import models

from accounting.outbox import OutboxMessage

__all__ = ["Outbox", "WebhookAttempt", "WebhookDelivery", "WebhookSubscription"]


class WebhookSubscription(models.Model):
    """A URL that receives signed JSON for ledger events of the listed kinds ("*" for all)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    event_kinds = models.JSONField(default=list)
    secret = models.CharField(max_length=64, help_text="HMAC-SHA256 key, shown once at subscription")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_webhook_subscription"
        ordering = ["id"]

    def __str__(self):
        return f"webhook {self.id} to {self.url}"


class WebhookDelivery(models.Model):
    """One event for one subscription, retried with exponential backoff until delivered or given up."""

    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    entry_seq = models.BigIntegerField()
    event_kind = models.CharField(max_length=64)
    event = models.JSONField(help_text="the JSON document that is signed and sent")
    status = models.CharField(max_length=16, default=PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "registry_webhook_delivery"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["subscription", "entry_seq"], name="registry_one_delivery")]

    def __str__(self):
        return f"delivery {self.id} of entry {self.entry_seq} ({self.status})"


class WebhookAttempt(models.Model):
    """The log of one delivery attempt: when, what came back, and the wait before the next one."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    retry_in_s = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "registry_webhook_attempt"
        ordering = ["delivery", "number"]

    def __str__(self):
        return f"attempt {self.number} of delivery {self.delivery_id}"


class Outbox(OutboxMessage):
    """Tasks of the ledger to publish after their transaction commits (accounting.outbox): webhook attempts."""

    class Meta(OutboxMessage.Meta):
        db_table = "ledger_outbox"
