"""Request body limits on every endpoint, checked from Content-Length before anything reads the body.

Every POST, PUT or PATCH may send at most MAX_REQUEST_BODY_BYTES unless its view names another setting (`body_limit`):
the raster upload MAX_RASTER_BYTES, the parcel import MAX_PARCEL_FILE_BYTES, POST /api/verify/
MAX_ANONYMOUS_BODY_BYTES. (Django's own DATA_UPLOAD_MAX_MEMORY_SIZE is the largest of the JSON limits, a backstop.)
A request that carries no credentials (no Authorization header on the API, no signed-in session) may send at most
MAX_ANONYMOUS_BODY_BYTES, whatever the view.
A larger body is answered 413 (problem+json under /api/, plain text on the pages) without a byte of it being read.

The check runs in `process_view`, before Django's CSRF check (which parses a form body) and before the view, so its
middleware must come before CsrfViewMiddleware. Under WSGI a body without Content-Length is not read at all (Django
reads CONTENT_LENGTH bytes), so the header bounds what any parser can read.
"""

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext

from config.common.errors import UploadTooLarge
from config.common.problems import error_problem, problem_detail

BODY_METHODS = ("POST", "PUT", "PATCH")
API_PREFIX = "/api/"


def body_limit(setting_name: str):
    """Decorate a page view (a function) with the setting that holds its body limit, e.g.
    ``@body_limit("MAX_RASTER_BYTES")``; an API view says it as a class attribute, ``request_body_limit = "..."``.
    Put it outermost, so that the URLconf's function carries it."""

    def decorate(view):
        view.request_body_limit = setting_name
        return view

    return decorate


def _declared_limit(view_func) -> str | None:
    for holder in (view_func, getattr(view_func, "cls", None), getattr(view_func, "view_class", None)):
        name = getattr(holder, "request_body_limit", None)
        if name:
            return name
    return None


def _has_credentials(request) -> bool:
    if request.path.startswith(API_PREFIX) and request.META.get("HTTP_AUTHORIZATION"):
        return True  # a token: DRF checks it before a view reads the body
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def request_body_limit(request, view_func) -> tuple[int, str]:
    """(limit in bytes, the setting it comes from) for this request to this view."""
    name = _declared_limit(view_func) or "MAX_REQUEST_BODY_BYTES"
    limit = getattr(settings, name)
    if not _has_credentials(request) and limit > settings.MAX_ANONYMOUS_BODY_BYTES:
        name, limit = "MAX_ANONYMOUS_BODY_BYTES", settings.MAX_ANONYMOUS_BODY_BYTES
    return limit, name


class RequestBodyLimitMiddleware:
    """413 for a body over its limit (`request_body_limit`), from Content-Length, before it is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in BODY_METHODS:
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Django reads no body then
        limit, setting_name = request_body_limit(request, view_func)
        if length <= limit:
            return None
        error = UploadTooLarge(length, limit, setting_name=setting_name)
        if request.path.startswith(API_PREFIX):
            return error_problem(request, error)
        return HttpResponse(f"{gettext('Upload too large')}: {problem_detail(error)}", status=413,
                            content_type="text/plain; charset=utf-8")
