"""REST doorways to webhooks: banks and exchanges subscribe URLs and read each subscription's delivery log."""

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import Paged, paginated, problems
from config.common.roles import BANK, EXCHANGE, role_required
from ledger.registry.errors import AssetNotFoundError
from ledger.registry.idempotency import idempotent
from ledger.webhooks.models import WebhookDelivery, WebhookSubscription
from ledger.webhooks.services import SIGNATURE_HEADER, webhook_subscribe


class WebhookOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "event_kinds", "active", "created_at"]


class WebhookSubscribedOutput(WebhookOutput):
    """The answer to a subscription (documentation only): the subscription, its secret and the signature header."""

    secret = serializers.CharField(help_text="the HMAC secret; shown only in this response")
    signature_header = serializers.CharField(help_text="the header that carries each delivery's signature")

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret", "signature_header"]


class WebhookDeliveryOutput(serializers.ModelSerializer):
    attempt_log = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = ["id", "entry_seq", "event_kind", "status", "attempts", "last_status_code", "last_error",
                  "created_at", "delivered_at", "attempt_log"]

    @extend_schema_field(inline_serializer("WebhookAttempt", {
        "number": serializers.IntegerField(), "attempted_at": serializers.DateTimeField(),
        "status_code": serializers.IntegerField(allow_null=True), "error": serializers.CharField(),
        "retry_in_s": serializers.IntegerField(allow_null=True)}, many=True))
    def get_attempt_log(self, delivery) -> list[dict]:
        return [{"number": a.number, "attempted_at": a.attempted_at.isoformat(), "status_code": a.status_code,
                 "error": a.error, "retry_in_s": a.retry_in_s} for a in delivery.attempt_log.all()]


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
        return Response({**WebhookOutput(subscription).data, "secret": subscription.secret,
                         "signature_header": SIGNATURE_HEADER}, status=status.HTTP_201_CREATED)


class WebhookDeliveryListView(Paged, APIView):
    """The delivery log of one of the caller's subscriptions (another user's is 404: it does not exist for you)."""

    def get_permissions(self):
        return [role_required(BANK, EXCHANGE)()]

    @extend_schema(responses=WebhookDeliveryOutput(many=True))
    def get(self, request, subscription_id: int):
        subscription = WebhookSubscription.objects.filter(id=subscription_id, owner=request.user).first()
        if subscription is None:
            raise AssetNotFoundError(f"you have no webhook subscription {subscription_id}")
        deliveries = subscription.deliveries.prefetch_related("attempt_log").order_by("id")
        return paginated(request, self, deliveries, lambda page: WebhookDeliveryOutput(page, many=True).data)
