"""What every web page shares: the role check, and showing a service's refusal as the API does.

Pages live in the app that owns what they show (geo: rasters and parcels; accounting: runs and the county
overview; ledger: assets, pledges, verification, checkpoints) and follow the API's rule: a form, one service,
then a redirect or a page. They use the same users and roles as the API, signed in with a session, and refuse
what the API refuses with the same status (`show_refusal`, `refused`), never by matching error text.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from config.common.problems import problem_detail, problem_type_of
from config.common.roles import has_role


def role_page_required(*roles: str):
    """Decorate a page view: anonymous users go to sign-in; signed-in users without any of `roles` get a 403 page
    that says which role is needed. No roles given: any signed-in user."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if roles and not has_role(request.user, *roles):
                return render(request, "config/forbidden.html", {"needed_roles": roles}, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --- the same refusals as the API ----------------------------------------------------------------------------

# A form that does not parse is a malformed request, as a body the API's serializer refuses: 400 on both doors.
FORM_INVALID_STATUS = 400
PROBLEM_HEADER = "Tanhui-Problem"  # the problem type of a refused page action: the API's `type` for the same


def is_refusal(exc: BaseException) -> bool:
    """Whether `exc` is an application error with a problem type (a refusal to show), not a bug."""
    return problem_type_of(exc) is not None


def show_refusal(form, exc: BaseException, *, fields: dict[str, str] | None = None) -> int:
    """Show a service's refusal on `form`, beside the field it names (`exc.field`, an API field name, mapped to
    the form's through `fields`) or above the form, in the page's language; return the status the API answers
    for the same refusal."""
    name = getattr(exc, "field", None)
    name = (fields or {}).get(name, name)
    form.add_error(name if name in form.fields else None, problem_detail(exc))
    return problem_type_of(exc).status


def refused(response, exc: BaseException | None):
    """Mark `response` with the problem type of `exc`, so that a client or a test sees the API's refusal."""
    known = problem_type_of(exc) if exc is not None else None
    if known is not None:
        response[PROBLEM_HEADER] = known.uri
    return response


def offer_only(field, choices, label=str) -> None:
    """Let an id field's drop-down (an IntegerField with a Select) offer only `choices`, rows that fit, while it
    still accepts any id, so that a posted id outside them reaches the service and gets the service's refusal
    (the API's), not a form error of the page's own."""
    field.widget.choices = [(item.pk, label(item)) for item in choices]
