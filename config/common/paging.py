"""Pages of every list of the API: `limit` and `offset`, checked, with a page-size cap (REST_FRAMEWORK's
DEFAULT_PAGINATION_CLASS)."""

from django.conf import settings
from django.utils.translation import gettext
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

# The largest value a page parameter may take: what a signed 64-bit integer holds (a database's LIMIT and OFFSET).
PAGE_PARAMETER_MAX = 2**63 - 1


class Pagination(LimitOffsetPagination):
    """limit/offset pages. `limit` (default PAGE_SIZE) is a whole number from 1 to 2**63 - 1, and a page holds at
    most API_MAX_PAGE_SIZE results whatever it asks; `offset` is a whole number from 0 to 2**63 - 1. Anything else
    is a 400 naming the parameter (DRF's own class would quietly use the default, or overflow the database)."""

    @property
    def max_limit(self) -> int:
        return settings.API_MAX_PAGE_SIZE

    def get_limit(self, request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return min(self.default_limit, self.max_limit)
        return min(_page_parameter(self.limit_query_param, raw, minimum=1), self.max_limit)

    def get_offset(self, request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        return 0 if raw is None else _page_parameter(self.offset_query_param, raw, minimum=0)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return page_parameter_schemas()


LIMIT_DESCRIPTION = ("Number of results to return per page (default 100). A page holds at most API_MAX_PAGE_SIZE "
                     "results (1000 unless the registry configures another) whatever the limit.")
OFFSET_DESCRIPTION = "The initial index from which to return the results."
LIMIT_SCHEMA = {"type": "integer", "minimum": 1, "maximum": PAGE_PARAMETER_MAX}
OFFSET_SCHEMA = {"type": "integer", "minimum": 0, "maximum": PAGE_PARAMETER_MAX}


def page_parameter_schemas() -> list[dict]:
    """The OpenAPI description of `limit` and `offset`."""
    return [
        {"name": "limit", "required": False, "in": "query", "description": LIMIT_DESCRIPTION,
         "schema": dict(LIMIT_SCHEMA)},
        {"name": "offset", "required": False, "in": "query", "description": OFFSET_DESCRIPTION,
         "schema": dict(OFFSET_SCHEMA)},
    ]


def _page_parameter(name: str, raw: str, *, minimum: int) -> int:
    text = raw.strip()
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None
    if value is None or not minimum <= value <= PAGE_PARAMETER_MAX:
        raise serializers.ValidationError({name: [
            gettext("%(name)s must be a whole number from %(minimum)s to %(maximum)s; got %(got)s") % {
                "name": name, "minimum": minimum, "maximum": PAGE_PARAMETER_MAX, "got": repr(raw[:40])}]})
    return value
