"""REST doorways to webhooks: banks and exchanges subscribe URLs and read each subscription's delivery log.
docs/webhooks.md is the receiver's guide; SUBSCRIBE_DESCRIPTION says the same in the schema."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import IsoDateTimeField, Paged, paginated, problems
from config.common.roles import BANK, EXCHANGE, role_required
from ledger.core import replay
from ledger.registry.errors import AssetNotFoundError
from ledger.registry.idempotency import idempotent
from ledger.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from ledger.webhooks.services import SIGNATURE_HEADER, webhook_subscribe


class WebhookOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "event_kinds", "active", "created_at"]


class WebhookSubscribedOutput(WebhookOutput):
    """The answer to a subscription: the subscription, its secret and the name of the signature header."""

    secret = serializers.CharField(help_text="the HMAC-SHA256 key of this subscription's signatures; shown only in "
                                             "this response")
    signature_header = serializers.SerializerMethodField(help_text="the header that carries each delivery's "
                                                                   "signature")

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret", "signature_header"]

    def get_signature_header(self, subscription) -> str:
        return SIGNATURE_HEADER


class WebhookAttemptSerializer(serializers.ModelSerializer):
    attempted_at = IsoDateTimeField()
    status_code = serializers.IntegerField(allow_null=True, help_text="the receiver's HTTP status; null if none")
    error = serializers.CharField(allow_blank=True, help_text='why the attempt failed ("" when delivered)')
    retry_in_s = serializers.IntegerField(allow_null=True, help_text="seconds until the next attempt; null: none")

    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "status_code", "error", "retry_in_s"]


class WebhookDeliveryOutput(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, help_text="each attempt, oldest first")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "entry_seq", "event_kind", "status", "attempts", "last_status_code", "last_error",
                  "created_at", "delivered_at", "attempt_log"]


SUBSCRIBE_DESCRIPTION = f"""A bank or exchange subscribes a URL to ledger events. The answer shows the subscription's
`secret` once: keep it, it keys every signature.

**Event kinds** (`event_kinds`, or `"*"` for all): {", ".join(f"`{kind}`" for kind in replay.KINDS)}.

**Each event** is POSTed to the URL as UTF-8 JSON with sorted keys and no spaces:
`{{"delivery": <delivery id>, "entry_hash": "<hex>", "event": "<kind>", "payload": {{...}}, "seq": <entry index>,
"timestamp": "<RFC 3339 UTC>"}}`. `payload` is the ledger entry's own payload (e.g. for `pledge.create`:
`asset`, `pledge`, `pledgee`, `amount`, `term_months`, `ltv_limit_pct`); GET /api/ledger/entries/{{seq}}/ shows the
same entry with its signature.

**Headers**: `Content-Type: application/json`, `User-Agent: Tanhui-Webhook/1`, `Tanhui-Event: <kind>`,
`Tanhui-Delivery: <delivery id>` (the same on every retry), and
`{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256>`.

**Signature**: `v1` = lower-case hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of `"<t>."` followed by the
raw request body. Compute it over the body bytes as received, compare in constant time, and refuse a `t` far
from your clock.

**Delivery**: answer 2xx to acknowledge. Other answers and timeouts are retried with exponential backoff
(10 s doubling to 1 h, 8 attempts by default); a message may arrive twice, so recognise it by `Tanhui-Delivery`.
GET /api/webhooks/{{id}}/deliveries/ shows every attempt. The URL must be http(s) to a host the registry allows."""


class WebhookListView(Paged, APIView):
    """The caller's webhook subscriptions (banks and exchanges)."""

    def get_permissions(self):
        return [role_required(BANK, EXCHANGE)()]

    @extend_schema_serializer(component_name="WebhookSubscribeInput")
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=500)
        event_kinds = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False)

    @extend_schema(summary="List your webhook subscriptions", description="Your subscriptions; their secrets are "
                   "shown only when they are created.", responses=WebhookOutput(many=True))
    def get(self, request):
        return paginated(request, self, WebhookSubscription.objects.filter(owner=request.user).order_by("id"),
                         lambda page: WebhookOutput(page, many=True).data)

    @extend_schema(summary="Subscribe a webhook", description=SUBSCRIBE_DESCRIPTION, examples=[OpenApiExample(
        "Pledge events", request_only=True, value={"url": "https://hooks.bank.example.com/tanhui",
                                                   "event_kinds": ["pledge.create", "pledge.release"]})],
        request=InputSerializer, responses={201: WebhookSubscribedOutput, **problems(400, 403, 422)})
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = webhook_subscribe(owner=request.user, **data.validated_data)
        return Response(WebhookSubscribedOutput(subscription).data, status=status.HTTP_201_CREATED)


class WebhookDeliveryListView(Paged, APIView):
    """The deliveries to one of your subscriptions, each with every attempt: when, the status your server answered,
    the error and the wait before the next attempt. Another user's subscription is 404: it does not exist for
    you."""

    def get_permissions(self):
        return [role_required(BANK, EXCHANGE)()]

    @extend_schema(operation_id="webhooks_deliveries_list",
                   responses={200: WebhookDeliveryOutput(many=True), **problems(403, 404)})
    def get(self, request, subscription_id: int):
        subscription = WebhookSubscription.objects.filter(id=subscription_id, owner=request.user).first()
        if subscription is None:
            raise AssetNotFoundError(f"you have no webhook subscription {subscription_id}")
        deliveries = subscription.deliveries.prefetch_related("attempt_log").order_by("id")
        return paginated(request, self, deliveries, lambda page: WebhookDeliveryOutput(page, many=True).data)
