"""GET /healthz: is the database reachable, and the broker when one is configured; how anchoring fares.

Anchoring never makes the service unhealthy: its check reports "off", "ok" or "degraded" (HTTP 200).
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

from config.common.problems import PROBLEM_CONTENT_TYPE
from ledger.anchoring.services import anchoring_health


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not reachable"; the message says which
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    if not settings.CELERY_BROKER_URL:
        return None
    try:
        with Connection(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_anchoring() -> dict:
    """A soft check: {"status": "off" | "ok" | "degraded", "detail": ...}; never "down"."""
    try:
        return anchoring_health()
    except Exception as exc:  # the database check reports the database; this one must not turn into a 503
        return {"status": "degraded", "detail": f"{type(exc).__name__}: {exc}"}


# name -> check; each returns None when healthy or the reason it is not. A soft check returns its whole entry
# (a dict with "status": "off", "ok" or "degraded") and never fails the service.
CHECKS = {"database": check_database, "broker": check_broker, "anchoring": check_anchoring}


@require_GET
def healthz(request):
    checks = {}
    failing = []
    degraded = []
    for name, check in CHECKS.items():
        reason = check()
        if isinstance(reason, dict):
            checks[name] = reason
            if reason.get("status") == "degraded":
                degraded.append(name)
        elif name == "broker" and not settings.CELERY_BROKER_URL:
            checks[name] = {"status": "off", "detail": "no CELERY_BROKER_URL: tasks run in-process"}
        elif reason is None:
            checks[name] = {"status": "ok"}
        else:
            checks[name] = {"status": "down", "detail": reason}
            failing.append(name)
    if failing:
        body = {
            "type": "about:blank",
            "title": "Service unavailable",
            "status": 503,
            "detail": f"unhealthy: {', '.join(failing)}",
            "instance": request.path,
            "checks": checks,
        }
        return JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
    if degraded:
        return JsonResponse({"status": "degraded", "detail": f"degraded: {', '.join(degraded)}", "checks": checks})
    return JsonResponse({"status": "ok", "checks": checks})
