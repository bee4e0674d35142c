"""API users: one role each (a Django group), a token, and for the bureau role a county."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from config.common.roles import BUREAU, ROLES, user_roles
from geo.counties import validate_county_code
from geo.errors import TranslatableError, gettext_noop
from geo.models import CountyMembership, user_county_code


class ApiUserError(TranslatableError, ValueError):
    """A user that cannot be created as asked."""


@transaction.atomic
def api_user_create(*, username: str, role: str, county_code: str | None = None, password: str | None = None,
                    superuser: bool = False) -> tuple[object, str]:
    """Create `username` with `role`, return (user, token key). Bureau users must name their county."""
    if role not in ROLES:
        raise ApiUserError(gettext_noop("role must be one of %(roles)s; got %(got)s"), roles=", ".join(ROLES),
                           got=repr(role))
    if role == BUREAU and not county_code:
        raise ApiUserError(gettext_noop("a bureau user needs --county (6-digit GB/T 2260 code, e.g. 510727)"))
    if county_code:
        validate_county_code(county_code)
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise ApiUserError(gettext_noop("user %(username)s already exists"), username=repr(username))
    user = user_model.objects.create_user(username=username, password=password or secrets.token_urlsafe(24),
                                          is_superuser=superuser, is_staff=superuser)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if county_code:
        CountyMembership.objects.create(user=user, county_code=county_code)
    token = Token.objects.create(user=user)
    return user, token.key


@transaction.atomic
def api_user_ensure(*, username: str, role: str, county_code: str | None = None,
                    password: str | None = None) -> tuple[object, str, bool]:
    """Create `username` as `api_user_create` does, or, when it exists, return its token, issued now if it has none.

    Returns (user, token key, created). An existing user is never changed: refused (ApiUserError, nothing changed)
    when it does not hold `role`, belongs to another county than `county_code`, or `password` is given.
    """
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user, token = api_user_create(username=username, role=role, county_code=county_code, password=password)
        return user, token, True
    held = sorted(user_roles(user))
    if role not in held:
        raise ApiUserError(f"user {username!r} already exists with role {', '.join(held) or '(none)'}, not {role}; "
                           f"nothing changed")
    own_county = user_county_code(user)
    if county_code and own_county != county_code:
        raise ApiUserError(f"user {username!r} already exists in county {own_county or '(none)'}, not {county_code}; "
                           f"nothing changed")
    if password:
        raise ApiUserError(f"user {username!r} already exists; --password sets the password of a new user only "
                           f"(use manage.py changepassword); nothing changed")
    return user, api_token_issue(user=user), False


def api_token_issue(*, user) -> str:
    """`user`'s API token key, issued now if the user has none."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


@transaction.atomic
def api_token_rotate(*, user) -> str:
    """Replace `user`'s API token with a new one and return its key; the old key stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key
