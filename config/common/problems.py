"""RFC 9457 problem details, the part every app may use: an error's problem type, the body, the response.

An application error says itself what problem it is, as class attributes (no table to keep in step, and no
import of every app's errors here):

    class AssetStateError(RegistryError):
        http_status = 409
        problem_slug = "asset-state"
        problem_title = gettext_noop("Asset cannot do this in its state")

Its `extensions` become named members of the body. An error that carries `message_template` and
`message_params` (see `TranslatableError`) is shown in the caller's language; others as `str(exc)`.
"""

from dataclasses import dataclass

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext
from rest_framework.response import Response

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


# Errors of Django itself that are problems of ours; application errors carry their own type.
_FRAMEWORK_TYPES: dict[type[BaseException], ProblemType] = {
    RequestDataTooBig: ProblemType(413, "upload-too-large", "Upload too large"),
}


def problem_type_of(exc: BaseException) -> ProblemType | None:
    """The problem type `exc` declares (http_status, problem_slug, problem_title), or None: a 500."""
    slug = getattr(exc, "problem_slug", None)
    if slug is not None:
        return ProblemType(exc.http_status, slug, exc.problem_title)
    for klass in type(exc).__mro__:
        if klass in _FRAMEWORK_TYPES:
            return _FRAMEWORK_TYPES[klass]
    return None


def problem_detail(exc: BaseException) -> str:
    """The error's message in the active language: its template translated, then filled; else str(exc)."""
    localized = getattr(exc, "localized", None)
    if callable(localized):  # a message assembled from translatable parts
        return localized(gettext)
    template = getattr(exc, "message_template", None)
    if template is None:
        return str(exc)
    params = getattr(exc, "message_params", None)
    if not params:
        return gettext(template)
    try:
        return gettext(template) % params
    except (KeyError, TypeError, ValueError):  # a translation that names other fields: the English stands
        return str(exc)


STATUS_TITLES = {
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
    body = {"type": type_uri, "title": title or gettext(STATUS_TITLES.get(status, "Error")), "status": status,
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


def error_problem(request: HttpRequest, exc: BaseException) -> JsonResponse | None:
    """problem+json for an application error raised outside a DRF view (in middleware); None if unknown."""
    known = problem_type_of(exc)
    if known is None:
        return None
    body = problem_body(status=known.status, type_uri=known.uri, title=gettext(known.title), detail=problem_detail(exc),
                        instance=request.path, **dict(getattr(exc, "extensions", {})))
    return JsonResponse(body, status=known.status, content_type=PROBLEM_CONTENT_TYPE,
                        json_dumps_params={"ensure_ascii": False})
