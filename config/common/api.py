"""Small API endpoints that belong to no single app."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings


def paginated(request, view, queryset, serialize) -> Response:
    """One page of `queryset` (limit/offset, as REST_FRAMEWORK configures), serialized by `serialize(page)`."""
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serialize(page))


class Paged:
    """Mixin for an APIView whose GET answers with `paginated`: drf-spectacular reads `pagination_class` to wrap
    the annotated `many=True` response in the page ({count, next, previous, results}) and to list the limit/offset
    parameters. Schema only: APIView itself never reads the attribute, and `paginated` pages as configured."""

    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS


# The query parameters of a `paginated` page, for views that describe their page with `page_schema`.
PAGE_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Number of results to return per page."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="The initial index from which to return the results."),
]


def page_schema(name: str, results, **extra) -> serializers.Serializer:
    """The schema of a `paginated` page whose view adds `extra` fields (or renames `results`, given as a pair)."""
    key, results = results if isinstance(results, tuple) else ("results", results)
    return inline_serializer(name, {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        key: results,
        **extra,
    })


# --- RFC 9457 problems (config.problems renders them) -----------------------------------------------------------

from config.common.problems import PROBLEM_CONTENT_TYPE as PROBLEM_MEDIA_TYPE  # noqa: E402


class ProblemFieldErrorSerializer(serializers.Serializer):
    pointer = serializers.CharField(help_text='JSON pointer into the request, e.g. "#/evidence/0/sha256"')
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem; problem types may add named extension members (e.g. `asset_code`, `overlap_ha`)."""

    type = serializers.CharField(help_text='"/problems/<slug>" relative to the API host, or "about:blank"')
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False, help_text="the request path")
    errors = ProblemFieldErrorSerializer(many=True, required=False,
                                         help_text="the invalid fields (400) or method parameters (422)")


_PROBLEM_DESCRIPTIONS = {
    400: "Invalid request (fields in `errors`)",
    401: "Not authenticated",
    403: "Forbidden for your role, county or party",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Upload too large",
    422: "Unprocessable content",
    503: "A service this needs is unavailable",
}


def problems(*codes: int) -> dict:
    """`responses` entries for these error statuses, each an application/problem+json ProblemSerializer."""
    return {(code, PROBLEM_MEDIA_TYPE): OpenApiResponse(ProblemSerializer, description=_PROBLEM_DESCRIPTIONS[code])
            for code in codes}
