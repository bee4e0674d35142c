"""RFC 9457 problem details, the part every app may use: an error's problem type, the body, the response.

An application error says itself what problem it is, as class attributes (no table to keep in step, and no
import of every app's errors here):

    class AssetStateError(RegistryError):
        http_status = 409
        problem_slug = "asset-state"
        problem_title = gettext_noop("Asset cannot do this in its state")

Its `extensions` become named members of the body. An error that carries `message_template` and
`message_params` (see `TranslatableError`) is shown in the caller's language, and so is any value of its extensions
that does (a `TranslatableMessage`, e.g. each bad feature's detail); others as `str(exc)`. Titles are marked with
gettext_noop and translated when the body is built.
"""

from dataclasses import dataclass

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.translation import get_language, gettext, gettext_noop
from rest_framework.response import Response

from config.common.pagetags import LABELS

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
    RequestDataTooBig: ProblemType(413, "upload-too-large", gettext_noop("Upload too large")),
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


# Message values that are codes of the field's vocabulary (a status, a party kind, a rights type): shown by their
# label in a language other than English, where the code itself would read as a foreign word. The problem's
# extension members keep the codes.
VOCABULARY_PARAMS = {"asset_status", "pledge_status", "run_status", "party_kind", "kind", "rights_type"}


def _named(name: str, value):
    if name not in VOCABULARY_PARAMS or not isinstance(value, str) or (get_language() or "en").startswith("en"):
        return value
    return str(LABELS.get(value, value))  # the pages' labels for the same codes


def translated(value):
    """`value` in the active language. A message (anything with a `message_template` string and `message_params`:
    a TranslatableMessage or a TranslatableError) is its template translated, then filled with its values, each
    translated first; dicts, lists and tuples are translated member by member; anything else is returned as is."""
    template = getattr(value, "message_template", None)
    if isinstance(template, str):
        separator = getattr(value, "message_separator", None)
        if isinstance(separator, str):  # joined_message: the parts, each translated, joined by the separator
            parts = (getattr(value, "message_params", None) or {}).values()
            return gettext(separator).join(str(translated(part)) for part in parts)
        if not template:
            return ""  # gettext("") is the catalog's header
        params = {name: _named(name, translated(item))
                  for name, item in (getattr(value, "message_params", None) or {}).items()}
        if not params:
            return gettext(template)
        try:
            return gettext(template) % params
        except (KeyError, TypeError, ValueError):  # a translation that names other fields: the English stands
            try:
                return template % params
            except (KeyError, TypeError, ValueError):
                return str(value)
    if isinstance(value, dict):
        return {key: translated(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [translated(item) for item in value]
    return value


def problem_detail(exc: BaseException) -> str:
    """The error's message in the active language: its template translated, then filled (also when its only
    argument is a TranslatableMessage, as an error of a pure core that stays English elsewhere may be given);
    else str(exc). An error may instead assemble its message itself: `exc.localized(gettext)`."""
    localized = getattr(exc, "localized", None)
    if callable(localized):  # a message assembled from translatable parts
        return localized(gettext)
    if isinstance(getattr(exc, "message_template", None), str):
        return translated(exc)
    args = getattr(exc, "args", ())
    if len(args) == 1 and isinstance(getattr(args[0], "message_template", None), str):
        return translated(args[0])
    return str(exc)


def problem_extensions(exc: BaseException) -> dict:
    """The error's extension members, each value in the active language (`translated`)."""
    return translated(dict(getattr(exc, "extensions", None) or {}))


STATUS_TITLES = {
    400: gettext_noop("Bad request"),
    401: gettext_noop("Not authenticated"),
    403: gettext_noop("Forbidden"),
    404: gettext_noop("Not found"),
    405: gettext_noop("Method not allowed"),
    406: gettext_noop("Not acceptable"),
    409: gettext_noop("Conflict"),
    413: gettext_noop("Upload too large"),
    415: gettext_noop("Unsupported media type"),
    422: gettext_noop("Unprocessable content"),
    429: gettext_noop("Too many requests"),
    500: gettext_noop("Internal server error"),
    503: gettext_noop("Service unavailable"),
}


def problem_body(*, status: int, detail: str, type_uri: str = "about:blank", title: str | None = None,
                 instance: str | None = None, **extensions) -> dict:
    body = {"type": type_uri, "title": title or gettext(STATUS_TITLES.get(status, gettext_noop("Error"))),
            "status": status,
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
                        instance=request.path, **problem_extensions(exc))
    return JsonResponse(body, status=known.status, content_type=PROBLEM_CONTENT_TYPE,
                        json_dumps_params={"ensure_ascii": False})
