"""What every web page shares: sign-in and sign-out, the role check, the home redirect.

Pages live in the app that owns what they show (geo: rasters and parcels; accounting: runs and the county
overview; ledger: assets, pledges, verification, checkpoints) and follow the API's rule: a form, one service,
then a redirect or a page. They use the same users and roles as the API, signed in with a session.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

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
