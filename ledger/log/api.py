"""REST doorways to the ledger: check the input, call one service or selector, serialize the result.

Hashes, roots, proofs and signatures are standard base64 (as in C2SP checkpoints and the CT API); timestamps
are the RFC 3339 strings the entry bytes carry. Keys and checkpoints are public (anonymous allowed); entries and
proofs need any authenticated role.

Caching: what is fixed by its URL never changes (a checkpoint of a size, an entry, a proof between fixed sizes) and
is served `immutable`; what follows the ledger (the latest checkpoint, a proof to it) may be kept
API_CACHE_LATEST_MAX_AGE_S seconds. Each carries an ETag computed without building the answer, and If-None-Match
with it answers 304. Public reads are `public`, the others `private`.
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
    NOT_MODIFIED,
    PAGE_PARAMETERS,
    PROBLEM_MEDIA_TYPE,
    Paged,
    ProblemSerializer,
    cache_immutable,
    cache_parameters,
    cache_short,
    conditional,
    page_of,
    page_response,
    paginated,
    problems,
)
from ledger.core import codec
from ledger.core.errors import TreeSizeError, gettext_noop
from ledger.log.models import Checkpoint, Entry, VerifierKey
from ledger.log.selectors import checkpoint_get, checkpoint_latest, entry_get, tree_proofs
from ledger.log.tree import tree_size_current

ENTRIES_MAX_SEQ = 2**62  # "to" when not given: past any ledger


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

    @extend_schema(parameters=cache_parameters(cache_control=cache_short(public=True) + " (`Vary: Accept`)"),
                   responses={(200, "application/json"): CheckpointOutput, (200, "text/plain"): OpenApiTypes.STR,
                              **NOT_MODIFIED, **problems(404)})
    def get(self, request):
        checkpoint = checkpoint_latest()
        if request.accepted_renderer.format == PlainTextRenderer.format:
            return conditional(request, etag=f'"cp-{checkpoint.tree_size}-note"', vary="Accept",
                               cache_control=cache_short(public=True),
                               build=lambda: Response(checkpoint.note_text, content_type="text/plain; charset=utf-8"))
        return conditional(request, etag=f'"cp-{checkpoint.tree_size}"', vary="Accept",
                           cache_control=cache_short(public=True),
                           build=lambda: Response(CheckpointOutput(checkpoint).data))


CheckpointPageOutput = page_of("PaginatedCheckpointOutputList", CheckpointOutput(many=True))


class CheckpointListView(APIView):
    """Signed checkpoints, oldest first (paged), or the one of `size` entries."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        size = serializers.IntegerField(min_value=1, required=False)

    @extend_schema(operation_id="ledger_checkpoints_list", description=(
        "With `size`, the one checkpoint of that size: it never changes, and is served `immutable` with an ETag."),
        parameters=[InputSerializer, *PAGE_PARAMETERS,
                    *cache_parameters(cache_control=f"with `size`: {cache_immutable(public=True)}")],
        responses={200: CheckpointPageOutput, **NOT_MODIFIED, **problems(400, 404)})
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if "size" in query.validated_data:
            checkpoint = checkpoint_get(tree_size=query.validated_data["size"])
            return conditional(request, etag=f'"cps-{checkpoint.tree_size}"',
                               cache_control=cache_immutable(public=True),
                               build=lambda: Response(CheckpointPageOutput({
                                   "count": 1, "next": None, "previous": None, "results": [checkpoint]}).data))
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
        last = query.validated_data.get("to", ENTRIES_MAX_SEQ)
        # seq runs 0..size-1 with no gap, so the log head gives the count without counting the table's rows
        count = max(0, min(last, tree_size_current() - 1) - first + 1)
        return paginated(request, self, Entry.objects.in_range(first, last),
                         lambda page: EntryOutput(page, many=True).data, count=count)


class EntryDetailView(APIView):
    """One ledger entry: its kind and payload, its timestamp, the hash chain (`prev_hash`, `hash`) and the
    registry's signature over it."""

    @extend_schema(parameters=cache_parameters(cache_control=cache_immutable(public=False)),
                   responses={200: EntryOutput, **NOT_MODIFIED, **problems(404)})
    def get(self, request, seq: int):
        entry = entry_get(seq=seq)
        return conditional(request, etag=f'"e-{seq}"', cache_control=cache_immutable(public=False),
                           build=lambda: Response(EntryOutput(entry).data))


class InclusionProofOutput(serializers.Serializer):
    seq = serializers.IntegerField(help_text="the entry's index in the log")
    tree_size = serializers.IntegerField(help_text="the size of the tree the proof is for")
    leaf_hash = Base64HashField(help_text="the entry's leaf hash")
    root_hash = Base64HashField(help_text="the root of the tree of `tree_size` entries")
    proof = serializers.ListField(child=Base64HashField(), help_text="the RFC 6962 audit path, leaf to root")
    checkpoint = serializers.CharField(allow_null=True, help_text="the signed note of this tree size, if any")


class EntryProofView(APIView):
    """The RFC 6962 inclusion proof of entry `seq` in the tree of `tree_size` entries (default: the latest
    signed checkpoint's size).

    With `tree_size` the answer is fixed once that size is behind the latest signed checkpoint or has one of its
    own (then `checkpoint` is its note), and is served `immutable`; without it, it follows the latest checkpoint."""

    class InputSerializer(serializers.Serializer):
        tree_size = serializers.IntegerField(min_value=1, required=False)

    @extend_schema(parameters=[InputSerializer, *cache_parameters(cache_control=(
        f"with a settled `tree_size`: {cache_immutable(public=False)}; otherwise {cache_short(public=False)}"))],
        responses={200: InclusionProofOutput, **NOT_MODIFIED, **problems(400, 404, 422)})
    def get(self, request, seq: int):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        entry = entry_get(seq=seq)
        asked = query.validated_data.get("tree_size")
        tree_size = asked or checkpoint_latest().tree_size
        signed = Checkpoint.objects.filter(tree_size=tree_size).values_list("note_text", flat=True).first()
        # Checkpoints are signed at the head's size, always above the last: a size below the latest signed one never
        # gets a note of its own, so its answer is settled too.
        settled = asked is not None and (signed is not None or Checkpoint.objects.filter(
            tree_size__gt=tree_size).exists())
        if seq >= tree_size:
            raise TreeSizeError(gettext_noop("entry %(seq)s is not in a tree of size %(tree_size)s; "
                                             "want 0 <= seq < tree_size"), seq=seq, tree_size=tree_size)

        def build():
            (proof,), _, (root,) = tree_proofs(inclusions=[(seq, tree_size)], roots=[tree_size])
            return Response(InclusionProofOutput({"seq": seq, "tree_size": tree_size, "leaf_hash": entry.hash,
                                                  "root_hash": root, "proof": proof, "checkpoint": signed}).data)

        return conditional(request, etag=f'"ip-{seq}-{tree_size}{"-signed" if signed else ""}"', build=build,
                           cache_control=cache_immutable(public=False) if settled else cache_short(public=False))


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

    @extend_schema(parameters=[InputSerializer, *cache_parameters(cache_control=cache_immutable(public=False))],
                   responses={
        200: ConsistencyProofOutput, **NOT_MODIFIED, **problems(400),
        (422, PROBLEM_MEDIA_TYPE): OpenApiResponse(ProblemSerializer, description="size beyond the log")})
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        first, second = query.validated_data["first"], query.validated_data["second"]
        current = tree_size_current()
        if second > current:
            raise TreeSizeError(gettext_noop("second %(second)s is beyond the ledger's size %(current_tree_size)s"),
                                second=second, current_tree_size=current)

        def build():
            _, (proof,), _ = tree_proofs(consistencies=[(first, second)])
            return Response(ConsistencyProofOutput({"first": first, "second": second, "proof": proof}).data)

        return conditional(request, etag=f'"cons-{first}-{second}"', cache_control=cache_immutable(public=False),
                           build=build)
