"""RFC 9457 problem details: every API error leaves the service through here.

Cores raise HTTP-free exceptions where the fault is understood; this module maps them through one table
(`PROBLEM_TYPES`) to a status, a type and a title, adds the exception's `extensions` (named values such as
`asset_code` or `overlap_ha`), rolls back the atomic request and renders `application/problem+json`.
Anything it does not know stays a logged 500.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

from accounting.methods.errors import MethodError, MethodParameterError
from accounting.models import ImmutableError
from accounting.services import RunInputError
from config.errors import UploadTooLarge
from geo.errors import (
    CountyScopeError,
    DuplicateParcelError,
    LegendError,
    ParcelError,
    RasterConflictError,
    RasterError,
    RasterTooLargeError,
)
from ledger.bundle_errors import BundleFormatError, RPCUnavailableError
from ledger.errors import (
    CheckpointNotFoundError,
    DurabilityUnconfirmedError,
    EntryNotFoundError,
    EntryPayloadError,
    ImmutableEntryError,
    InconsistentCheckpointError,
    NoteError,
    ProofError,
    TreeSizeError,
)
from ledger.registry_errors import (
    AssetNotFoundError,
    AssetPledgedError,
    AssetStateError,
    IdempotencyKeyReusedError,
    ParcelOverlapError,
    PledgeLimitError,
    RegistryForbiddenError,
    RegistryInputError,
    USCCError,
    ValuationError,
    WebhookURLError,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    slug: str
    title: str

    @property
    def uri(self) -> str:
        # A relative reference, resolved against the API's own host (RFC 9457 section 3.1.1).
        return f"/problems/{self.slug}"


# Exception class -> problem type. Application errors are added here as the cores define them;
# a subclass maps through its nearest listed base class.
PROBLEM_TYPES: dict[type[BaseException], ProblemType] = {
    UploadTooLarge: ProblemType(413, "upload-too-large", "Upload too large"),
    RequestDataTooBig: ProblemType(413, "upload-too-large", "Upload too large"),
    # geo
    RasterTooLargeError: ProblemType(413, "raster-too-large", "Raster too large"),
    RasterConflictError: ProblemType(409, "raster-conflict", "Raster already registered differently"),
    RasterError: ProblemType(422, "invalid-raster", "Invalid raster"),
    LegendError: ProblemType(422, "invalid-legend", "Invalid legend"),
    CountyScopeError: ProblemType(403, "outside-your-county", "Outside your county"),
    DuplicateParcelError: ProblemType(409, "duplicate-parcel", "Duplicate parcel code"),
    ParcelError: ProblemType(422, "invalid-parcels", "Invalid parcels"),
    # accounting
    MethodParameterError: ProblemType(422, "invalid-method-parameters", "Invalid method parameters"),
    MethodError: ProblemType(422, "method-cannot-apply", "Method cannot be applied"),
    RunInputError: ProblemType(422, "invalid-run", "Invalid accounting run"),
    ImmutableError: ProblemType(409, "immutable", "Cannot change a published record"),
    # ledger
    EntryNotFoundError: ProblemType(404, "entry-not-found", "No such ledger entry"),
    CheckpointNotFoundError: ProblemType(404, "checkpoint-not-found", "No such checkpoint"),
    TreeSizeError: ProblemType(422, "invalid-tree-size", "Tree size out of range"),
    ProofError: ProblemType(422, "invalid-proof", "Invalid Merkle proof"),
    NoteError: ProblemType(422, "invalid-note", "Invalid signed note"),
    EntryPayloadError: ProblemType(422, "invalid-entry", "Invalid ledger entry"),
    ImmutableEntryError: ProblemType(409, "immutable-entry", "Ledger entries cannot change"),
    InconsistentCheckpointError: ProblemType(409, "inconsistent-checkpoint", "Checkpoint would be inconsistent"),
    DurabilityUnconfirmedError: ProblemType(503, "durability-unconfirmed", "Committed but not confirmed on disk"),
    # registry
    USCCError: ProblemType(422, "invalid-uscc", "Invalid unified social credit code"),
    RegistryInputError: ProblemType(422, "invalid-registry-request", "Invalid registry request"),
    ValuationError: ProblemType(422, "cannot-value-asset", "Cannot value the asset"),
    IdempotencyKeyReusedError: ProblemType(422, "idempotency-key-reused", "Idempotency key used for another request"),
    WebhookURLError: ProblemType(422, "webhook-url-refused", "Webhook URL refused"),
    RegistryForbiddenError: ProblemType(403, "registry-forbidden", "Not yours to change"),
    AssetNotFoundError: ProblemType(404, "not-found", "Not found"),
    ParcelOverlapError: ProblemType(409, "parcel-overlaps-asset", "Parcel overlaps a registered asset"),
    AssetPledgedError: ProblemType(409, "asset-pledged", "Asset is pledged"),
    AssetStateError: ProblemType(409, "asset-state", "Asset cannot do this in its state"),
    PledgeLimitError: ProblemType(409, "pledge-limit-exceeded", "Loan-to-value limit exceeded"),
    # bundle
    BundleFormatError: ProblemType(422, "unusable-bundle", "Bundle cannot be verified"),
    RPCUnavailableError: ProblemType(503, "anchor-rpc-unavailable", "Chain RPC unavailable"),
}

_STATUS_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Upload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_body(*, status: int, detail: str, type_uri: str = "about:blank", title: str | None = None,
                 instance: str | None = None, **extensions) -> dict:
    body = {"type": type_uri, "title": title or _STATUS_TITLES.get(status, "Error"), "status": status,
            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(**kwargs) -> Response:
    body = problem_body(**kwargs)
    return Response(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)


def field_errors(detail, pointer: str = "#") -> list[dict]:
    """Flatten DRF's nested error detail into RFC 9457-style entries: [{"pointer": "#/field", "detail": ...}]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            child = pointer if key in ("non_field_errors", "__all__") else f"{pointer}/{key}"
            out.extend(field_errors(value, child))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"pointer": pointer, "detail": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            out.extend(field_errors(item, f"{pointer}/{index}"))
        return out
    return [{"pointer": pointer, "detail": str(detail)}]


def _lookup(exc: BaseException) -> ProblemType | None:
    for klass in type(exc).__mro__:
        if klass in PROBLEM_TYPES:
            return PROBLEM_TYPES[klass]
    return None


def problem_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: map `exc` to a problem+json response, or return None (a 500)."""
    request = context.get("request")
    instance = request.path if request is not None else None

    known = _lookup(exc)
    if known is not None:
        set_rollback()
        extensions = dict(getattr(exc, "extensions", {}))
        if isinstance(getattr(exc, "problems", None), dict):
            # e.g. MethodParameterError: {parameter path: what is wrong}
            extensions.setdefault("errors", [{"pointer": f"#/parameters/{path.replace('.', '/')}", "detail": why}
                                             for path, why in sorted(exc.problems.items())])
        return problem_response(status=known.status, type_uri=known.uri, title=known.title, detail=str(exc),
                                instance=instance, **extensions)

    if isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if not isinstance(exc, drf.APIException):
        return None

    set_rollback()
    if isinstance(exc, drf.ValidationError):
        errors = field_errors(exc.detail)
        detail = "; ".join(e["detail"] if e["pointer"] == "#" else f"{e['pointer'].removeprefix('#/')}: {e['detail']}"
                           for e in errors)
        response = problem_response(status=exc.status_code, detail=detail or "invalid request",
                                    title="Invalid request", instance=instance, errors=errors)
    else:
        response = problem_response(status=exc.status_code, detail=str(exc.detail), instance=instance)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response


def _django_problem(request: HttpRequest, status: int, detail: str) -> JsonResponse:
    body = problem_body(status=status, detail=detail, instance=request.path)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE,
                        json_dumps_params={"ensure_ascii": False})


def error_problem(request: HttpRequest, exc: Exception) -> JsonResponse | None:
    """problem+json for an error of PROBLEM_TYPES raised outside a DRF view (in middleware); None if unknown."""
    known = _lookup(exc)
    if known is None:
        return None
    body = problem_body(status=known.status, type_uri=known.uri, title=known.title, detail=str(exc),
                        instance=request.path, **dict(getattr(exc, "extensions", {})))
    return JsonResponse(body, status=known.status, content_type=PROBLEM_CONTENT_TYPE,
                        json_dumps_params={"ensure_ascii": False})


def not_found(request, exception=None):
    return _django_problem(request, 404, f"no resource at {request.path}")


def server_error(request):
    return _django_problem(request, 500, "the server failed to handle this request; it has been logged")


def bad_request(request, exception=None):
    return _django_problem(request, 400, "the request could not be understood")


def forbidden(request, exception=None):
    return _django_problem(request, 403, "you may not do this")
