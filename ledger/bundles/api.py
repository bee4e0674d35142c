"""REST doorways to pledge bundles: download a bundle, print its certificate, verify a bundle on the server.

- GET /api/assets/{code}/bundle/[?tree_size=N]: the bundle as RFC 8785 canonical JSON (any authenticated role);
  header `Tanhui-Bundle-SHA256` carries the sha256 of the body, `ETag` names it (If-None-Match -> 304, without
  building it). When no signed checkpoint covers the asset's entries yet: 409 `checkpoint-due` with Retry-After
  (a GET never signs; one has been requested).
- GET /api/assets/{code}/certificate.pdf[?tree_size=N]: the one-page certificate of that same bundle.
- POST /api/verify/ (anonymous allowed): the checks of `python -m ledger.verifier`. The body is a bundle, or
  {"bundle": {...}, "keys": [vkey, ...], "trusted_checkpoint": "note", "consistency_proof": {...}}; without
  "keys" the registry's own published keys are trusted (use the offline verifier to trust none of ours).
  200 {"valid": true, ...summary} or 200 {"valid": false, "field", "reason", "detail"}; unusable input is 422.
  `reason` is the verifier's own English, as the command line prints it; `detail` is "field: reason" with its
  lead in the caller's language.
"""

import hashlib

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import (
    CACHE_REVALIDATE,
    NOT_MODIFIED,
    PROBLEM_MEDIA_TYPE,
    ConstantField,
    MoneyOutput,
    ProblemSerializer,
    cache_parameters,
    conditional,
    problems,
)
from config.common.problems import translated
from config.common.roles import role_required
from ledger.bundles.certificate import certificate_pdf
from ledger.bundles.services import (
    bundle_basis,
    bundle_build,
    bundle_bytes,
    bundle_sha256,
    verdict_failure_detail,
)
from ledger.core.errors import CheckpointDueError, TranslatableMessage, gettext_noop
from ledger.log.models import VerifierKey
from ledger.log.selectors import read_snapshot
from ledger.registry.api import ANY_ROLE
from ledger.registry.models import Asset
from ledger.verifier.checks import MEDIA_TYPE, check_format, parse_json, verify_bundle
from ledger.verifier.errors import BundleFormatError, BundleInvalidError

SHA256_HEADER = "Tanhui-Bundle-SHA256"
TREE_SIZE_PARAMETER = OpenApiParameter("tree_size", int, description="prove to the checkpoint of exactly this size")
SHA256_RESPONSE_HEADER = OpenApiParameter(SHA256_HEADER, str, OpenApiParameter.HEADER, response=[200],
                                          description="hex sha256 of the bundle's canonical JSON bytes")


CACHE_AT_TREE_SIZE = "private, max-age=API_CACHE_BUNDLE_MAX_AGE_S (one hour)"
CACHE_DESCRIPTION = (f"`{CACHE_REVALIDATE}` for the latest bundle (revalidate with If-None-Match: 304 while the asset "
                     f"and its checkpoint are unchanged); `{CACHE_AT_TREE_SIZE}` with `tree_size`, whose bytes change "
                     "only when the checkpoint's anchor advances on chain")
CHECKPOINT_DUE = {
    (409, PROBLEM_MEDIA_TYPE): OpenApiResponse(ProblemSerializer, description=(
        "Conflict with the current state; in particular `/problems/checkpoint-due`: no signed checkpoint covers the "
        "asset's entries yet (a recent change). A read never signs one: one has been requested, and `Retry-After` "
        "(also `retry_after_s`) says when to ask again.")),
}
RETRY_AFTER_HEADER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[409],
                                      description="with `checkpoint-due`: seconds until the checkpoint is due")


class _TreeSizeInput(serializers.Serializer):
    tree_size = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)  # a 400, not an overflow


class _BundleRead(APIView):
    """What the bundle and its certificate share: the roles, the conditional read, Retry-After when a checkpoint is
    due."""

    def get_permissions(self):
        return [role_required(*ANY_ROLE)()]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, CheckpointDueError):
            response["Retry-After"] = str(exc.retry_after_s)
        return response

    def conditional_bundle(self, request, code: str, *, weak: bool, build):
        """304 when If-None-Match names the bundle's basis, else `build(bundle)`; both with ETag and Cache-Control.
        Everything is read in one snapshot, so that a write beside it cannot split the asset from its entries."""
        query = _TreeSizeInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        tree_size = query.validated_data.get("tree_size")
        asset = get_object_or_404(Asset, code=code)
        cache_control = (CACHE_REVALIDATE if tree_size is None
                         else f"private, max-age={settings.API_CACHE_BUNDLE_MAX_AGE_S}")
        with read_snapshot():
            basis = bundle_basis(asset=asset, tree_size=tree_size)
            etag = f"W/{basis.etag}" if weak else basis.etag
            return conditional(request, etag=etag, cache_control=cache_control,
                               build=lambda: build(bundle_build(asset=asset, basis=basis)))


class BundleView(_BundleRead):
    """The asset's pledge bundle, to verify offline: the asset's current state, every ledger entry that concerns it,
    an inclusion proof of each in one signed checkpoint, the registry's verifier keys and the checkpoint's on-chain
    anchor. The body is RFC 8785 canonical JSON (format `tanhui-pledge-bundle/1`, described in the project's
    docs/bundle.md with a JSON Schema); `Tanhui-Bundle-SHA256` is the sha256 of its bytes. Verify it with
    `python -m ledger.verifier BUNDLE.json --key VKEY`, or POST it to /api/verify/. `tree_size` proves it to an
    older checkpoint of exactly that size.

    A bundle is only ever proven to a checkpoint that is already signed: right after a change to the asset there
    may be none that covers it yet, and the answer is then 409 `checkpoint-due` with `Retry-After` (a checkpoint has
    been requested; this read signs nothing). `ETag` names the bundle's bytes; If-None-Match with it answers 304
    without building the bundle again."""

    @extend_schema(summary="Download an asset's pledge bundle",
                   parameters=[TREE_SIZE_PARAMETER, SHA256_RESPONSE_HEADER, RETRY_AFTER_HEADER,
                               *cache_parameters(cache_control=CACHE_DESCRIPTION)],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT, **NOT_MODIFIED, **problems(400, 404),
                              **CHECKPOINT_DUE})
    def get(self, request, code: str):
        def build(bundle):
            body = bundle_bytes(bundle)
            response = HttpResponse(body, content_type="application/json")
            response[SHA256_HEADER] = hashlib.sha256(body).hexdigest()
            response["Content-Disposition"] = f'inline; filename="{code}.bundle.json"'
            return response

        return self.conditional_bundle(request, code, weak=False, build=build)


class CertificateView(_BundleRead):
    """The one-page certificate (PDF) of the asset's pledge bundle, in English and Chinese: the asset, its holder,
    valuation and pledges, with a QR code of the bundle's sha256 and the address to verify it at. Like the bundle,
    409 `checkpoint-due` until a signed checkpoint covers the asset's entries; its (weak) `ETag` follows the
    bundle's."""

    @extend_schema(operation_id="assets_certificate_retrieve", summary="Print an asset's certificate",
                   parameters=[TREE_SIZE_PARAMETER, SHA256_RESPONSE_HEADER, RETRY_AFTER_HEADER,
                               *cache_parameters(cache_control=CACHE_DESCRIPTION)],
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY, **NOT_MODIFIED, **problems(400, 404),
                              **CHECKPOINT_DUE})
    def get(self, request, code: str):
        def build(bundle):
            digest = bundle_sha256(bundle)
            pdf = certificate_pdf(bundle, bundle_sha256=digest,
                                  verify_url=request.build_absolute_uri(reverse("bundle-verify")))
            response = HttpResponse(pdf, content_type="application/pdf")
            response[SHA256_HEADER] = digest
            response["Content-Disposition"] = f'inline; filename="{code}.certificate.pdf"'
            return response

        return self.conditional_bundle(request, code, weak=True, build=build)


def _verify_request(raw: bytes) -> tuple[dict, list[str] | None, str | None, dict | None]:
    """(bundle, keys, trusted checkpoint, consistency proof) from a request body; BundleFormatError if unusable."""
    document = parse_json(raw)
    if not isinstance(document, dict) or "bundle" not in document:
        return check_format(document), None, None, None
    keys = document.get("keys")
    if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
        raise BundleFormatError(TranslatableMessage(gettext_noop("keys: want an array of verifier key strings")))
    trusted = document.get("trusted_checkpoint")
    if trusted is not None and not isinstance(trusted, str):
        raise BundleFormatError(TranslatableMessage(gettext_noop("trusted_checkpoint: want the signed note as a "
                                                                 "string")))
    proof = document.get("consistency_proof")
    if proof is not None and not isinstance(proof, dict):
        raise BundleFormatError(TranslatableMessage(gettext_noop("consistency_proof: want the object "
                                                                 "/api/ledger/consistency/ returns")))
    return check_format(document["bundle"]), keys, trusted, proof


class BundlePledgeSerializer(serializers.Serializer):
    """An active pledge as the bundle's entries give it."""

    id = serializers.IntegerField()
    asset = serializers.CharField(help_text="asset code")
    pledgee = serializers.IntegerField(help_text="party id of the bank")
    amount = MoneyOutput()
    term_months = serializers.IntegerField()
    ltv_limit_pct = serializers.CharField(help_text="decimal string")
    status = serializers.CharField()


class BundleVerdictHolderSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="party id")
    name = serializers.CharField()


class BundleValidOutput(serializers.Serializer):
    """The bundle passed every check: what it proves. The instance is the verifier's verdict as a dict."""

    valid = ConstantField(True)
    asset = serializers.CharField(help_text="asset code")
    holder = BundleVerdictHolderSerializer(help_text="the holder the entries give")
    status = serializers.CharField(help_text="the asset's status the entries give")
    active_pledges = BundlePledgeSerializer(many=True)
    tree_size = serializers.IntegerField(help_text="the size of the signed checkpoint the entries are proven in")
    root_hash = serializers.CharField(help_text="that checkpoint's root, standard base64")
    signed_by = serializers.CharField(help_text="the key name that signed the checkpoint")
    entries = serializers.IntegerField(help_text="entries proven")
    consistent_with = serializers.IntegerField(allow_null=True, help_text="the size of the trusted checkpoint "
                                                                          "it is consistent with, if one was given")
    anchor = serializers.CharField(allow_null=True, help_text="the on-chain anchor check (null here: the server "
                                                              "does not check anchors)")
    notes = serializers.ListField(child=serializers.CharField(), help_text="anything else worth knowing")
    summary = serializers.CharField(help_text="the verdict as lines of text")


class BundleInvalidOutput(serializers.Serializer):
    """The bundle failed a check: where, and why."""

    valid = ConstantField(False)
    field = serializers.CharField(help_text='where the bundle fails, e.g. "proofs[2]"')
    reason = serializers.CharField(help_text="the check that failed")
    detail = serializers.SerializerMethodField(help_text="field and reason as one sentence")

    def get_detail(self, error: BundleInvalidError) -> str:
        return translated(verdict_failure_detail(error))


BUNDLE_VERDICT = PolymorphicProxySerializer(component_name="BundleVerdict", resource_type_field_name=None,
                                            serializers=[BundleValidOutput, BundleInvalidOutput])


class VerifyView(APIView):
    """Check a pledge bundle as the offline verifier does: every entry's signature and hash chain, its inclusion
    proof, the checkpoint's signature, and that the entries give the asset state the bundle shows. Anyone may call
    it, signed in or not.

    The body is the bundle itself, or {"bundle": ..., "keys": [...], "trusted_checkpoint": "...",
    "consistency_proof": {...}}: `keys` are the verifier keys to trust (default: this registry's published keys),
    `trusted_checkpoint` a signed checkpoint you already hold, and `consistency_proof` the answer of
    GET /api/ledger/consistency/ from its size to the bundle's. The on-chain anchor is not checked here (the
    offline verifier does it with `--rpc`).

    The answer is 200 either way: {"valid": true, ...} with what the bundle proves, or {"valid": false, "field",
    "reason", "detail"} naming where it fails. A body that is not a bundle at all is a 422 problem."""

    permission_classes = [AllowAny]
    authentication_classes = []  # anonymous by design; a stale token must not turn this into a 401
    request_body_limit = "MAX_ANONYMOUS_BODY_BYTES"  # config.common.limits: anyone may call it, token or none

    @extend_schema(summary="Verify a pledge bundle", examples=[
        OpenApiExample("A bundle with the keys to trust", request_only=True, value={
            "bundle": {"format": "tanhui-pledge-bundle/1", "asset": {"code": "510727-2026-000001", "...": "..."},
                       "entries": ["..."], "proofs": ["..."], "checkpoint": "tanhui.local/registry\n42\n...",
                       "...": "..."},
            "keys": ["tanhui.local/registry+2f6a1c3e+AaB3...base64..."]}),
        OpenApiExample("Valid", response_only=True, value={
            "valid": True, "asset": "510727-2026-000001", "holder": {"id": 7, "name": "Guanba village collective"},
            "status": "confirmed", "active_pledges": [{
                "id": 3, "asset": "510727-2026-000001", "pledgee": 5,
                "amount": {"amount": "1000000.00", "currency": "CNY"}, "term_months": 36, "ltv_limit_pct": "50.00",
                "status": "active"}],
            "tree_size": 42, "root_hash": "Yq3mVf3tN7dXw1m5o0J5mJf0m1r2V7GZc3q1bq6bX0E=",
            "signed_by": "tanhui.local/registry", "entries": 5, "consistent_with": None, "anchor": None,
            "notes": ["active pledges total 1000000.00 CNY"],
            "summary": "VALID: asset 510727-2026-000001, held by Guanba village collective (party 7), confirmed"}),
        OpenApiExample("Invalid", response_only=True, value={
            "valid": False, "field": "proofs[2]", "reason": "inclusion proof does not lead to the checkpoint's root",
            "detail": "proofs[2]: inclusion proof does not lead to the checkpoint's root"}),
    ],
                   request={MEDIA_TYPE: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
                   responses={200: BUNDLE_VERDICT, **problems(422)})
    def post(self, request):
        bundle, keys, trusted, proof = _verify_request(request.body)
        if keys is None:
            keys = list(VerifierKey.objects.values_list("vkey", flat=True))
        try:
            verdict = verify_bundle(bundle, trusted_keys=keys, trusted_checkpoint=trusted, consistency_proof=proof)
        except BundleInvalidError as error:
            return Response(BundleInvalidOutput(error).data)
        return Response(BundleValidOutput(verdict.as_dict()).data)
