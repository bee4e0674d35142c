"""REST doorways to the ledger: check the input, call one service or selector, serialize the result.

Hashes, roots, proofs and signatures are standard base64 (as in C2SP checkpoints and the CT API); timestamps
are the RFC 3339 strings the entry bytes carry. Keys and checkpoints are public (anonymous allowed); entries and
proofs need any authenticated role.
"""

import base64

from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import renderers, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import (
    PAGE_PARAMETERS,
    PROBLEM_MEDIA_TYPE,
    Paged,
    ProblemSerializer,
    page_of,
    page_response,
    paginated,
    problems,
)
from ledger.core import codec
from ledger.core.errors import TreeSizeError, gettext_noop
from ledger.log.models import Checkpoint, Entry, VerifierKey
from ledger.log.selectors import checkpoint_get, checkpoint_latest, entry_get
from ledger.log.tree import tree_consistency_proof, tree_inclusion_proof, tree_root, tree_size_current


def _b64(value) -> str:
    return base64.b64encode(bytes(value)).decode()


@extend_schema_field(OpenApiTypes.BYTE)
class Base64HashField(serializers.Field):
    def to_representation(self, value):
        return _b64(value)


class PlainTextRenderer(renderers.BaseRenderer):
    """text/plain for signed notes; anything else (a problem body) falls back to JSON."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode(self.charset)
        return renderers.JSONRenderer().render(data, accepted_media_type, renderer_context)


class CheckpointOutput(serializers.ModelSerializer):
    root_hash = Base64HashField()
    note = serializers.CharField(source="note_text")

    class Meta:
        model = Checkpoint
        fields = ["tree_size", "root_hash", "key_id", "created_at", "note"]


class EntryOutput(serializers.ModelSerializer):
    timestamp = serializers.SerializerMethodField()
    prev_hash = Base64HashField()
    hash = Base64HashField()
    signature = Base64HashField()

    class Meta:
        model = Entry
        fields = ["seq", "kind", "payload", "timestamp", "prev_hash", "hash", "signature", "key_id"]

    def get_timestamp(self, entry) -> str:
        return codec.format_timestamp(entry.timestamp)


class CheckpointLatestView(APIView):
    """The latest signed checkpoint: the C2SP note as text/plain when asked for, JSON otherwise."""

    permission_classes = [AllowAny]
    renderer_classes = [renderers.JSONRenderer, PlainTextRenderer]

    @extend_schema(responses={(200, "application/json"): CheckpointOutput, (200, "text/plain"): OpenApiTypes.STR,
                              **problems(404)})
    def get(self, request):
        checkpoint = checkpoint_latest()
        if request.accepted_renderer.format == PlainTextRenderer.format:
            return Response(checkpoint.note_text, content_type="text/plain; charset=utf-8")
        return Response(CheckpointOutput(checkpoint).data)


CheckpointPageOutput = page_of("PaginatedCheckpointOutputList", CheckpointOutput(many=True))


class CheckpointListView(APIView):
    """Signed checkpoints, oldest first (paged), or the one of `size` entries."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        size = serializers.IntegerField(min_value=1, required=False)

    @extend_schema(operation_id="ledger_checkpoints_list", parameters=[InputSerializer, *PAGE_PARAMETERS],
                   responses={200: CheckpointPageOutput, **problems(400, 404)})
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if "size" in query.validated_data:
            checkpoint = checkpoint_get(tree_size=query.validated_data["size"])
            return Response(CheckpointPageOutput({"count": 1, "next": None, "previous": None,
                                                  "results": [checkpoint]}).data)
        return page_response(request, self, Checkpoint.objects.order_by("tree_size"), CheckpointPageOutput)


class KeyOutput(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = VerifierKey
        fields = ["name", "key_id", "vkey", "created_at", "retired_at", "current"]

    def get_current(self, key) -> bool:
        return key.retired_at is None


class KeyListView(APIView):
    """The registry's verifier keys, current and retired, in `name+keyid+base64` form."""

    permission_classes = [AllowAny]
    pagination_class = None

    @extend_schema(responses=KeyOutput(many=True))
    def get(self, request):
        return Response(KeyOutput(VerifierKey.objects.all(), many=True).data)


class EntryListView(Paged, APIView):
    """Entries with from <= seq <= to, in log order, paged."""

    def _validate_range(self, attrs):
        if "to" in attrs and attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": gettext("to=%(to)s is below from=%(from)s") % attrs})
        return attrs

    # "from" is a Python keyword, so the class is built from a dict.
    InputSerializer = type("EntryRangeInput", (serializers.Serializer,), {
        "from": serializers.IntegerField(min_value=0, required=False, default=0),
        "to": serializers.IntegerField(min_value=0, required=False),
        "validate": _validate_range,
    })

    @extend_schema(operation_id="ledger_entries_list", parameters=[InputSerializer],
                   responses={200: EntryOutput(many=True), **problems(400)})
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        first = query.validated_data["from"]
        last = query.validated_data.get("to", 2**62)
        return paginated(request, self, Entry.objects.in_range(first, last),
                         lambda page: EntryOutput(page, many=True).data)


class EntryDetailView(APIView):
    """One ledger entry: its kind and payload, its timestamp, the hash chain (`prev_hash`, `hash`) and the
    registry's signature over it."""

    @extend_schema(responses={200: EntryOutput, **problems(404)})
    def get(self, request, seq: int):
        return Response(EntryOutput(entry_get(seq=seq)).data)


class InclusionProofOutput(serializers.Serializer):
    seq = serializers.IntegerField(help_text="the entry's index in the log")
    tree_size = serializers.IntegerField(help_text="the size of the tree the proof is for")
    leaf_hash = Base64HashField(help_text="the entry's leaf hash")
    root_hash = Base64HashField(help_text="the root of the tree of `tree_size` entries")
    proof = serializers.ListField(child=Base64HashField(), help_text="the RFC 6962 audit path, leaf to root")
    checkpoint = serializers.CharField(allow_null=True, help_text="the signed note of this tree size, if any")


class EntryProofView(APIView):
    """The RFC 6962 inclusion proof of entry `seq` in the tree of `tree_size` entries (default: the latest
    signed checkpoint's size)."""

    class InputSerializer(serializers.Serializer):
        tree_size = serializers.IntegerField(min_value=1, required=False)

    @extend_schema(parameters=[InputSerializer], responses={200: InclusionProofOutput, **problems(400, 404, 422)})
    def get(self, request, seq: int):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        entry = entry_get(seq=seq)
        tree_size = query.validated_data.get("tree_size") or checkpoint_latest().tree_size
        proof = tree_inclusion_proof(seq=seq, tree_size=tree_size)
        signed = Checkpoint.objects.filter(tree_size=tree_size).values_list("note_text", flat=True).first()
        return Response(InclusionProofOutput({
            "seq": seq, "tree_size": tree_size, "leaf_hash": entry.hash, "root_hash": tree_root(tree_size=tree_size),
            "proof": proof, "checkpoint": signed}).data)


class ConsistencyProofOutput(serializers.Serializer):
    first = serializers.IntegerField(help_text="the older tree's size")
    second = serializers.IntegerField(help_text="the newer tree's size")
    proof = serializers.ListField(child=Base64HashField(), help_text="the RFC 6962 consistency proof")


class ConsistencyProofView(APIView):
    """The RFC 6962 consistency proof between the trees of `first` and `second` entries (0 < first <= second)."""

    class InputSerializer(serializers.Serializer):
        first = serializers.IntegerField(min_value=1)
        second = serializers.IntegerField(min_value=1)

        def validate(self, attrs):
            if attrs["second"] < attrs["first"]:
                raise serializers.ValidationError({"second": gettext("second=%(second)s is below first=%(first)s")
                                                   % attrs})
            return attrs

    @extend_schema(parameters=[InputSerializer], responses={
        200: ConsistencyProofOutput, **problems(400),
        (422, PROBLEM_MEDIA_TYPE): OpenApiResponse(ProblemSerializer, description="size beyond the log")})
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        first, second = query.validated_data["first"], query.validated_data["second"]
        if second > tree_size_current():
            raise TreeSizeError(gettext_noop("second %(second)s is beyond the ledger's size %(current_tree_size)s"),
                                second=second, current_tree_size=tree_size_current())
        proof = tree_consistency_proof(old_size=first, new_size=second)
        return Response(ConsistencyProofOutput({"first": first, "second": second, "proof": proof}).data)
