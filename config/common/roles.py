"""The four institutional roles, as Django groups, and DRF permissions that require them."""

from django.utils.translation import gettext, gettext_noop
from rest_framework.permissions import BasePermission

BUREAU = "bureau"        # county ecology bureau, the registrar
BANK = "bank"
EXCHANGE = "exchange"
AUDITOR = "auditor"
ROLES = (BUREAU, BANK, EXCHANGE, AUDITOR)
# The roles' names in an API refusal, in the caller's language (the pages show longer labels, pagetags.LABELS).
ROLE_NAMES = {BUREAU: gettext_noop("bureau"), BANK: gettext_noop("bank"), EXCHANGE: gettext_noop("exchange"),
              AUDITOR: gettext_noop("auditor")}


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_tanhui_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._tanhui_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def role_required(*roles: str) -> type[BasePermission]:
    """A DRF permission class that admits authenticated users holding any of `roles`."""

    class HasRole(BasePermission):
        @property
        def message(self) -> str:  # DRF reads it when it refuses: in the caller's language
            names = gettext(" or ").join(gettext(ROLE_NAMES[r]) if r in ROLE_NAMES else r for r in roles)
            return gettext("this action needs the role %(roles)s") % {"roles": names}

        def has_permission(self, request, view):
            return has_role(request.user, *roles)

    HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return HasRole
