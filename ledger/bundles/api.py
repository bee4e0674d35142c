"""REST doorways to pledge bundles: download a bundle, print its certificate, verify a bundle on the server.

- GET /api/assets/{code}/bundle/[?tree_size=N]: the bundle as RFC 8785 canonical JSON (any authenticated role);
  header `Tanhui-Bundle-SHA256` carries the sha256 of the body.
- GET /api/assets/{code}/certificate.pdf[?tree_size=N]: the one-page certificate of that same bundle.
- POST /api/verify/ (anonymous allowed): the checks of `python -m ledger.verifier`. The body is a bundle, or
  {"bundle": {...}, "keys": [vkey, ...], "trusted_checkpoint": "note", "consistency_proof": {...}}; without
  "keys" the registry's own published keys are trusted (use the offline verifier to trust none of ours).
  200 {"valid": true, ...summary} or 200 {"valid": false, "field", "reason", "detail"}; unusable input is 422.
  `reason` is the verifier's own English, as the command line prints it; `detail` is "field: reason" with its
  lead in the caller's language.
"""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import problems
from config.common.problems import translated
from config.common.roles import role_required
from ledger.bundles.certificate import certificate_pdf
from ledger.bundles.services import bundle_build, bundle_bytes, bundle_sha256, verdict_failure_detail
from ledger.core.errors import TranslatableMessage, gettext_noop
from ledger.log.models import VerifierKey
from ledger.registry.api import ANY_ROLE
from ledger.registry.models import Asset
from ledger.verifier.checks import MEDIA_TYPE, check_format, parse_json, verify_bundle
from ledger.verifier.errors import BundleFormatError, BundleInvalidError

SHA256_HEADER = "Tanhui-Bundle-SHA256"
TREE_SIZE_PARAMETER = OpenApiParameter("tree_size", int, description="prove to the checkpoint of exactly this size")
SHA256_RESPONSE_HEADER = OpenApiParameter(SHA256_HEADER, str, OpenApiParameter.HEADER, response=[200],
                                          description="hex sha256 of the bundle's canonical JSON bytes")


class _TreeSizeInput(serializers.Serializer):
    tree_size = serializers.IntegerField(min_value=1, required=False)


def _bundle_for(request, code: str) -> dict:
    query = _TreeSizeInput(data=request.query_params)
    query.is_valid(raise_exception=True)
    asset = get_object_or_404(Asset, code=code)
    return bundle_build(asset=asset, tree_size=query.validated_data.get("tree_size"))


class BundleView(APIView):
    """The asset's pledge bundle: projection, entries, inclusion proofs, signed checkpoint, keys, anchor."""

    def get_permissions(self):
        return [role_required(*ANY_ROLE)()]

    @extend_schema(parameters=[TREE_SIZE_PARAMETER, SHA256_RESPONSE_HEADER],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT, **problems(400, 404)})
    def get(self, request, code: str):
        bundle = _bundle_for(request, code)
        body = bundle_bytes(bundle)
        response = HttpResponse(body, content_type="application/json")
        response[SHA256_HEADER] = bundle_sha256(bundle)
        response["Content-Disposition"] = f'inline; filename="{code}.bundle.json"'
        return response


class CertificateView(APIView):
    """The one-page certificate (PDF) of the bundle, with a QR code of its sha256 and the verify URL."""

    def get_permissions(self):
        return [role_required(*ANY_ROLE)()]

    @extend_schema(operation_id="assets_certificate_retrieve", parameters=[TREE_SIZE_PARAMETER, SHA256_RESPONSE_HEADER],
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY, **problems(400, 404)})
    def get(self, request, code: str):
        bundle = _bundle_for(request, code)
        digest = bundle_sha256(bundle)
        pdf = certificate_pdf(bundle, bundle_sha256=digest,
                              verify_url=request.build_absolute_uri(reverse("bundle-verify")))
        response = HttpResponse(pdf, content_type="application/pdf")
        response[SHA256_HEADER] = digest
        response["Content-Disposition"] = f'inline; filename="{code}.certificate.pdf"'
        return response


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


class VerifyView(APIView):
    """Run the offline verifier's checks on an uploaded bundle (no anchor check: that needs the bank's RPC)."""

    permission_classes = [AllowAny]
    authentication_classes = []  # anonymous by design; a stale token must not turn this into a 401

    @extend_schema(request={MEDIA_TYPE: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
                   responses={200: inline_serializer("BundleVerdict", {
                       "valid": serializers.BooleanField(),
                       # valid: true
                       "asset": serializers.CharField(required=False),
                       "holder": inline_serializer("BundleVerdictHolder", {"id": serializers.IntegerField(),
                                                                           "name": serializers.CharField()},
                                                   required=False),
                       "status": serializers.CharField(required=False),
                       "active_pledges": serializers.ListField(child=serializers.DictField(), required=False),
                       "tree_size": serializers.IntegerField(required=False),
                       "root_hash": serializers.CharField(required=False, help_text="base64"),
                       "signed_by": serializers.CharField(required=False),
                       "entries": serializers.IntegerField(required=False),
                       "consistent_with": serializers.IntegerField(required=False, allow_null=True),
                       "anchor": serializers.CharField(required=False, allow_null=True),
                       "notes": serializers.ListField(child=serializers.CharField(), required=False),
                       "summary": serializers.CharField(required=False),
                       # valid: false
                       "field": serializers.CharField(required=False, help_text="where the bundle fails"),
                       "reason": serializers.CharField(required=False),
                       "detail": serializers.CharField(required=False),
                   }), **problems(422)})
    def post(self, request):
        bundle, keys, trusted, proof = _verify_request(request.body)
        if keys is None:
            keys = list(VerifierKey.objects.values_list("vkey", flat=True))
        try:
            verdict = verify_bundle(bundle, trusted_keys=keys, trusted_checkpoint=trusted, consistency_proof=proof)
        except BundleInvalidError as error:
            return Response({"valid": False, "field": error.field, "reason": error.reason,
                             "detail": translated(verdict_failure_detail(error))})
        return Response(verdict.as_dict())
