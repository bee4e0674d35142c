"""What every app's API shares: pages, a few field types, RFC 9457 problems, and the schema hooks for them.

The serializers are the contract: each response body is produced by the serializer its schema is generated from
(`Serializer(instance).data`), so what the schema says is what is sent. Pages are serializers too (`page_of`).
"""

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from django.utils.translation import gettext_noop
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import parsers, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings

from config.common.errors import JSONInputError
from config.common.jsonlimits import json_loads
from config.common.paging import LIMIT_DESCRIPTION, LIMIT_SCHEMA, OFFSET_DESCRIPTION, OFFSET_SCHEMA
from config.common.problems import PROBLEM_CONTENT_TYPE as PROBLEM_MEDIA_TYPE

# --- fields ---------------------------------------------------------------------------------------------------


class IsoDateTimeField(serializers.DateTimeField):
    """An RFC 3339 timestamp as Python's `isoformat()` writes it ("2026-01-02T03:04:05.678901+00:00"), the
    spelling the registry's answers have always used (DRF's own DateTimeField writes "Z")."""

    def to_representation(self, value):
        return None if value is None else value.isoformat()


class ConstantField(serializers.Field):
    """A member whose value is always `value` (e.g. GeoJSON's "type": "Feature"); documented as a one-value enum."""

    def __init__(self, value: str | bool | int, **kwargs):
        self.value = value
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, instance):
        return self.value


class _ConstantFieldSchema(OpenApiSerializerFieldExtension):
    target_class = ConstantField

    def map_serializer_field(self, auto_schema, direction):
        value = self.target.value
        kind = (OpenApiTypes.BOOL if isinstance(value, bool) else OpenApiTypes.INT if isinstance(value, int)
                else OpenApiTypes.STR)
        return {**build_basic_type(kind), "enum": [value]}


class OpenObjectSerializer(serializers.Serializer):
    """A serializer whose objects may carry members beyond its fields (documented as `additionalProperties`):
    a problem's extension members, a parcel's imported attributes."""


class _OpenObjectSchema(OpenApiSerializerExtension):
    target_class = OpenObjectSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": True}


class MoneyOutput(serializers.Serializer):
    amount = serializers.CharField(help_text='decimal string, e.g. "123456.78"')
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. CNY")


# --- parsing --------------------------------------------------------------------------------------------------


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with `config.common.jsonlimits.json_loads`: a body nested too deep, a number beyond a double,
    NaN or a lone surrogate is a 400 problem (JSONInputError), never a crash; the default parser of every view."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        raw = stream.read() if stream is not None else b""
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            try:
                raw = raw.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                raise JSONInputError(gettext_noop("the body is not %(encoding)s text"), encoding=encoding) from None
        return json_loads(raw)


# --- pages ----------------------------------------------------------------------------------------------------


def paginated(request, view, queryset, serialize, *, count: int | None = None) -> Response:
    """One page of `queryset` (limit/offset, as REST_FRAMEWORK configures), serialized by `serialize(page)`.
    `count`, when the caller knows it without a COUNT(*) over the table (the ledger's entries), is used as is."""
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    if count is not None:
        paginator.get_count = lambda queryset: count
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serialize(page))


class Paged:
    """Mixin for an APIView whose GET answers with `paginated`: drf-spectacular reads `pagination_class` to wrap
    the annotated `many=True` response in the page ({count, next, previous, results}) and to list the limit/offset
    parameters. APIView itself never reads the attribute, and `paginated` pages as configured."""

    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS


# The query parameters of a page, for views that describe their page with `page_of`.
PAGE_PARAMETERS = [
    OpenApiParameter("limit", LIMIT_SCHEMA, description=LIMIT_DESCRIPTION),
    OpenApiParameter("offset", OFFSET_SCHEMA, description=OFFSET_DESCRIPTION),
]


def page_of(name: str, results: serializers.Field, *, key: str = "results", before: dict | None = None,
            **after) -> type[serializers.Serializer]:
    """A page serializer named `name`: {count, next, previous, **before, key: results, **after}. Its instance is
    the mapping `page_response` builds (the page's objects under `key`, the other members by name)."""
    fields = {
        "count": serializers.IntegerField(help_text="results in all pages"),
        "next": serializers.URLField(allow_null=True, help_text="the next page, if any"),
        "previous": serializers.URLField(allow_null=True, help_text="the previous page, if any"),
        **(before or {}),
        key: results,
        **after,
    }
    page = type(name, (serializers.Serializer,), {**fields, "__module__": __name__, "__doc__": f"One page of {key}."})
    page._declared_fields = {name: page._declared_fields[name] for name in fields}  # in this order, not by creation
    return page


def page_response(request, view, queryset, page_serializer: type[serializers.Serializer], *, key: str = "results",
                  **members) -> Response:
    """One page of `queryset` (limit/offset, as REST_FRAMEWORK configures) serialized by `page_serializer`
    (from `page_of`), with `members` beside the page's objects."""
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    objects = paginator.paginate_queryset(queryset, request, view=view)
    envelope = dict(paginator.get_paginated_response(objects).data)
    envelope[key] = envelope.pop("results")
    return Response(page_serializer({**envelope, **members}).data)


# --- RFC 9457 problems (config.problems renders them) -----------------------------------------------------------


class ProblemErrorSerializer(serializers.Serializer):
    pointer = serializers.CharField(required=False, help_text='JSON pointer into the request, e.g. '
                                                              '"#/evidence/0/sha256", "#/parameters/pools/0/c_soil" '
                                                              'or "#/features/3/properties/code"')
    parameter = serializers.CharField(required=False, help_text="the query parameter at fault, where that is what is "
                                                                "wrong (e.g. crs), instead of a pointer")
    index = serializers.IntegerField(required=False, allow_null=True,
                                     help_text="a parcel file's feature, counted from 0 (null: the whole file)")
    code = serializers.CharField(required=False, allow_null=True, help_text="that feature's parcel code, if any")
    detail = serializers.CharField(help_text="what is wrong there")


class ProblemSerializer(OpenObjectSerializer):
    """An RFC 9457 problem (application/problem+json). A problem type may add named members of its own, e.g.
    `asset_code` and `overlap_ha` for an overlap, `idempotency_key` for a reused key."""

    type = serializers.CharField(help_text='"/problems/<slug>" relative to the API host, or "about:blank"')
    title = serializers.CharField(help_text="the problem type's title, in the caller's language")
    status = serializers.IntegerField(help_text="the HTTP status code")
    detail = serializers.CharField(help_text="what went wrong with this request, in the caller's language")
    instance = serializers.CharField(required=False, help_text="the request path")
    errors = ProblemErrorSerializer(many=True, required=False,
                                    help_text="each invalid field (400), method parameter (422) or parcel feature "
                                              "(409, 422)")


PROBLEM_DESCRIPTIONS = {
    400: "Invalid request (fields in `errors`)",
    401: "Not authenticated: no token, or an unknown one",
    403: "Forbidden for your role, county or party",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    412: "Precondition failed: the asset is no longer what If-Match or `expected_holder` said (the problem names "
         "its current `etag` and `holder`)",
    413: "Upload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    503: "A service this needs is unavailable",
}


def problems(*codes: int, serializer=ProblemSerializer) -> dict:
    """`responses` entries for these error statuses, each an application/problem+json `serializer`."""
    return {(code, PROBLEM_MEDIA_TYPE): OpenApiResponse(serializer, description=PROBLEM_DESCRIPTIONS[code])
            for code in codes}


DURABILITY_UNCONFIRMED = ("The database did not confirm that the ledger entries this answer shows or writes are on "
                          "disk (problem type /problems/durability-unconfirmed). Retry a read; a write may have "
                          "committed, so retry it with the same Idempotency-Key.")


BODY_TOO_LARGE = ("Request body too large: larger than this operation accepts (MAX_REQUEST_BODY_BYTES, "
                  "MAX_ANONYMOUS_BODY_BYTES without credentials, or the upload limits), refused before it is read")


def document_common_problems(result, generator, request, public):
    """drf-spectacular postprocessing hook for the problems any operation may answer: 401 where a signed-in user
    is needed, 400 for a bad `limit` or `offset` wherever they are taken, 413 for a request body over its limit on
    every operation that takes a body (config.common.limits), and 503 when the ledger's entries cannot be confirmed
    on disk (every answer waits for that)."""
    problem = {"$ref": "#/components/schemas/Problem"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            security = operation.get("security") or []
            if security and {} not in security:
                operation["responses"].setdefault("401", {
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}}, "description": PROBLEM_DESCRIPTIONS[401]})
            if any(parameter.get("name") in ("limit", "offset") and parameter.get("in") == "query"
                   for parameter in operation.get("parameters", [])):
                operation["responses"].setdefault("400", {
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}}, "description": PROBLEM_DESCRIPTIONS[400]})
            if "requestBody" in operation:  # a body that is not JSON the API accepts (config.common.jsonlimits)
                operation["responses"].setdefault("400", {
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}}, "description": PROBLEM_DESCRIPTIONS[400]})
            if method in ("post", "put", "patch"):
                operation["responses"].setdefault("413", {
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}}, "description": BODY_TOO_LARGE})
            operation["responses"].setdefault("503", {
                "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}}, "description": DURABILITY_UNCONFIRMED})
    return result


# --- conditional GET and cache headers (RFC 9110 section 13, RFC 9111) --------------------------------------------
# A view that can name its representation's entity tag cheaply (from a ledger sequence number or a tree size, without
# building the body) answers If-None-Match with 304 before doing the work. Responses that need a signed-in user are
# `private` (no shared cache may keep them); the public ledger reads are `public`.

IMMUTABLE_MAX_AGE_S = 365 * 24 * 3600  # RFC 8246: a response that never changes at this URL


def cache_immutable(*, public: bool) -> str:
    """Cache-Control of a response that never changes at its URL: a checkpoint or a proof at a fixed size."""
    return f"{'public' if public else 'private'}, max-age={IMMUTABLE_MAX_AGE_S}, immutable"


def cache_short(*, public: bool) -> str:
    """Cache-Control of a response that moves on with the ledger (the latest checkpoint, a proof to it)."""
    return f"{'public' if public else 'private'}, max-age={settings.API_CACHE_LATEST_MAX_AGE_S}"


CACHE_REVALIDATE = "private, no-cache"  # keep it, but ask (If-None-Match) before each use: an asset, its bundle


def etag_matches(request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (RFC 9110 13.1.2: weak comparison; "*" names any)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    bare = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == bare for tag in tags)


def with_validators(response: HttpResponse, *, etag: str, cache_control: str, vary: str | None = None):
    """Set ETag and Cache-Control (and Vary) on `response`; return it."""
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    if vary:
        patch_vary_headers(response, [vary])
    return response


def conditional(request, *, etag: str, cache_control: str, build, vary: str | None = None) -> HttpResponse:
    """304 Not Modified when If-None-Match names `etag`, else `build()`; both with the validators."""
    if etag_matches(request, etag):
        return with_validators(HttpResponseNotModified(), etag=etag, cache_control=cache_control, vary=vary)
    return with_validators(build(), etag=etag, cache_control=cache_control, vary=vary)


IF_NONE_MATCH_PARAMETER = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER,
    description="An ETag this endpoint gave you: when the representation still has it, the answer is 304 with no "
                "body.")


def cache_parameters(*, cache_control: str) -> list[OpenApiParameter]:
    """The schema's If-None-Match request header and ETag and Cache-Control response headers (200 and 304)."""
    return [
        IF_NONE_MATCH_PARAMETER,
        OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200, 304],
                         description="the representation's entity tag, for If-None-Match"),
        OpenApiParameter("Cache-Control", str, OpenApiParameter.HEADER, response=[200, 304],
                         description=cache_control),
    ]


NOT_MODIFIED = {304: OpenApiResponse(description="Not modified: the representation still has the ETag given in "
                                                 "If-None-Match (no body)")}
