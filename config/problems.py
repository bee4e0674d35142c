"""RFC 9457 problem details: every API error leaves the service through here (DRF's EXCEPTION_HANDLER and the
URLconf's error handlers). The composition root: it knows DRF's and Django's errors; application errors declare
their own problem type (`config.common.problems`).

Anything it does not know stays a logged 500. The URLconf's handlers answer problem+json under /api/ and a page in
the user's language everywhere else (config/templates/config/{400,403,404,500}.html).
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext
from rest_framework import exceptions as drf
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

from config.common.problems import (
    PROBLEM_CONTENT_TYPE,
    field_errors,
    problem_body,
    problem_detail,
    problem_extensions,
    problem_response,
    problem_type_of,
    translated,
)


def problem_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: map `exc` to a problem+json response, or return None (a 500)."""
    request = context.get("request")
    instance = request.path if request is not None else None

    known = problem_type_of(exc)
    if known is not None:
        set_rollback()
        extensions = problem_extensions(exc)
        if isinstance(getattr(exc, "problems", None), dict):
            # e.g. MethodParameterError: {parameter path: what is wrong}
            extensions.setdefault("errors", [{"pointer": f"#/parameters/{path.replace('.', '/')}",
                                              "detail": translated(why)} for path, why in sorted(exc.problems.items())])
        detail = problem_detail(exc)
        field = getattr(exc, "field", None)
        if isinstance(field, str) and field:  # the request field at fault, as a validation error names it
            extensions.setdefault("errors", [{"pointer": f"#/{field}", "detail": detail}])
        return problem_response(status=known.status, type_uri=known.uri, title=gettext(known.title),
                                detail=detail, instance=instance, **extensions)

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
        response = problem_response(status=exc.status_code, detail=detail or gettext("invalid request"),
                                    title=gettext("Invalid request"), instance=instance, errors=errors)
    else:
        response = problem_response(status=exc.status_code, detail=str(exc.detail), instance=instance)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response


API_PREFIX = "/api/"
logger = logging.getLogger(__name__)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def _django_problem(request: HttpRequest, status: int, detail: str) -> JsonResponse:
    body = problem_body(status=status, detail=detail, instance=request.path)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE,
                        json_dumps_params={"ensure_ascii": False})


def _plain_page(template_name: str, status: int, fallback: str) -> HttpResponse:
    """A page that needs neither the request nor the database (no context processors), for when either may be
    what failed; plain text if even the template fails."""
    try:
        content = loader.get_template(template_name).render()
    except Exception:
        logger.exception("the %s page could not be rendered", status)
        return HttpResponse(fallback, status=status, content_type="text/plain; charset=utf-8")
    return HttpResponse(content, status=status)


def not_found(request, exception=None):
    if _is_api(request):
        return _django_problem(request, 404, gettext("no resource at %(path)s") % {"path": request.path})
    return render(request, "config/404.html", {"path": request.path}, status=404)


def server_error(request):
    if _is_api(request):
        return _django_problem(request, 500, gettext("the server failed to handle this request; it has been logged"))
    return _plain_page("config/500.html", 500, gettext("the server failed to handle this request; it has been logged"))


def bad_request(request, exception=None):
    if _is_api(request):
        return _django_problem(request, 400, gettext("the request could not be understood"))
    return _plain_page("config/400.html", 400, gettext("the request could not be understood"))


def forbidden(request, exception=None):
    if _is_api(request):
        return _django_problem(request, 403, gettext("you may not do this"))
    return render(request, "config/403.html", status=403)
