"""REST doorway to on-chain anchors: GET /api/ledger/anchors/ (public, like checkpoints).

Roots are standard base64, as in the checkpoint API; `tx_hash` is the chain's "0x…" hex. The page carries an
`anchoring` object that says whether anchoring is on (and from which address) or off and why.
"""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from config.common.api import PAGE_PARAMETERS, page_of, page_response
from ledger.anchoring.models import Anchor
from ledger.anchoring.services import anchoring_status
from ledger.log.api import Base64HashField


class AnchorOutput(serializers.ModelSerializer):
    root_hash = Base64HashField()

    class Meta:
        model = Anchor
        fields = ["tree_size", "root_hash", "chain_id", "sender", "nonce", "tx_hash", "block_number", "status",
                  "reason", "attempts", "next_attempt_at", "sent_at", "final_at", "created_at", "updated_at"]


@extend_schema_serializer(component_name="AnchoringStatus")
class AnchoringStatusOutput(serializers.Serializer):
    """Whether anchoring is on; when it is, how many confirmations make an anchor final, how often checkpoints are
    anchored, and the sending account."""

    enabled = serializers.BooleanField()
    detail = serializers.CharField(required=False, help_text="why anchoring is off, or what is wrong with it")
    confirmations = serializers.IntegerField(required=False, help_text="blocks after which an anchor is final")
    interval_s = serializers.IntegerField(required=False, help_text="seconds between anchors")
    sender = serializers.CharField(required=False, help_text="the anchoring account's 0x address")


AnchorPageOutput = page_of("PaginatedAnchorList", AnchorOutput(many=True), anchoring=AnchoringStatusOutput())


class AnchorListView(APIView):
    """On-chain anchors of signed checkpoints, oldest first (paged), and whether anchoring is on."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="ledger_anchors_list",
        parameters=PAGE_PARAMETERS,
        responses=AnchorPageOutput)
    def get(self, request):
        return page_response(request, self, Anchor.objects.order_by("tree_size"), AnchorPageOutput,
                             anchoring=anchoring_status())
