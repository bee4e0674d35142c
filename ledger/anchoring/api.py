"""REST doorway to on-chain anchors: GET /api/ledger/anchors/ (public, like checkpoints).

Roots are standard base64, as in the checkpoint API; `tx_hash` is the chain's "0x…" hex. The page carries an
`anchoring` object that says whether anchoring is on (and from which address) or off and why.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from config.common.api import PAGE_PARAMETERS, page_schema, paginated
from ledger.anchoring.models import Anchor
from ledger.anchoring.services import anchoring_status
from ledger.log.api import Base64HashField


class AnchorOutput(serializers.ModelSerializer):
    root_hash = Base64HashField()

    class Meta:
        model = Anchor
        fields = ["tree_size", "root_hash", "chain_id", "sender", "nonce", "tx_hash", "block_number", "status",
                  "reason", "attempts", "next_attempt_at", "sent_at", "final_at", "created_at", "updated_at"]


class AnchorListView(APIView):
    """On-chain anchors of signed checkpoints, oldest first (paged), and whether anchoring is on."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="ledger_anchors_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("PaginatedAnchorList", AnchorOutput(many=True), anchoring=inline_serializer(
            "AnchoringStatus", {
                "enabled": serializers.BooleanField(),
                "detail": serializers.CharField(required=False, help_text="why anchoring is off, or its fault"),
                "confirmations": serializers.IntegerField(required=False),
                "interval_s": serializers.IntegerField(required=False),
                "sender": serializers.CharField(required=False, help_text="the anchoring account's 0x address"),
            })))
    def get(self, request):
        response = paginated(request, self, Anchor.objects.order_by("tree_size"),
                             lambda page: AnchorOutput(page, many=True).data)
        response.data["anchoring"] = anchoring_status()
        return response
