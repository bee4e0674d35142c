from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from geo.counties import CountyCodeError, validate_county_code


def _county_code_validator(value: str) -> None:
    try:
        validate_county_code(value)
    except CountyCodeError as exc:
        raise ValidationError(str(exc)) from None


class CountyMembership(models.Model):
    """The county (GB/T 2260 code) a bureau user registers in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="county_membership")
    county_code = models.CharField(max_length=6, validators=[_county_code_validator])

    def __str__(self) -> str:
        return f"{self.user} @ {self.county_code}"


def user_county_code(user) -> str | None:
    membership = getattr(user, "county_membership", None) if user.is_authenticated else None
    return membership.county_code if membership else None
