"""API users: one role each (a Django group), a token, and for the bureau role a county."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from config.common.roles import BUREAU, ROLES
from geo.counties import validate_county_code
from geo.errors import TranslatableError, gettext_noop
from geo.models import CountyMembership


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
