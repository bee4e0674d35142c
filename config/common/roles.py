"""The four institutional roles, as Django groups, and DRF permissions that require them."""

from rest_framework.permissions import BasePermission

BUREAU = "bureau"        # county ecology bureau, the registrar
BANK = "bank"
EXCHANGE = "exchange"
AUDITOR = "auditor"
ROLES = (BUREAU, BANK, EXCHANGE, AUDITOR)


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
        message = f"this action needs the role {' or '.join(roles)}"

        def has_permission(self, request, view):
            return has_role(request.user, *roles)

    HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return HasRole
