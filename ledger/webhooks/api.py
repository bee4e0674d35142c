"""REST doorways to webhooks: banks and exchanges subscribe URLs and read each subscription's delivery log."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import IsoDateTimeField, Paged, paginated, problems
from config.common.roles import BANK, EXCHANGE, role_required
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


class WebhookListView(Paged, APIView):
    """The caller's webhook subscriptions; POST subscribes a URL (banks and exchanges). The secret is shown once."""

    def get_permissions(self):
        return [role_required(BANK, EXCHANGE)()]

    @extend_schema_serializer(component_name="WebhookSubscribeInput")
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=500)
        event_kinds = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False)

    @extend_schema(responses=WebhookOutput(many=True))
    def get(self, request):
        return paginated(request, self, WebhookSubscription.objects.filter(owner=request.user).order_by("id"),
                         lambda page: WebhookOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: WebhookSubscribedOutput, **problems(400, 403, 422)})
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = webhook_subscribe(owner=request.user, **data.validated_data)
        return Response(WebhookSubscribedOutput(subscription).data, status=status.HTTP_201_CREATED)


class WebhookDeliveryListView(Paged, APIView):
    """The delivery log of one of the caller's subscriptions (another user's is 404: it does not exist for you)."""

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
