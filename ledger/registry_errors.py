"""HTTP-free errors of the rights registry, raised where the fault is understood. No Django.

`config/problems.py` maps each class to a status and a problem type; `extensions` become named members of the
problem (e.g. `overlaps`, `pledge_id`, `expected_check_character`).
"""

from ledger.uscc import USCCError

__all__ = ["AssetNotFoundError", "AssetPledgedError", "AssetStateError", "IdempotencyKeyReusedError",
           "ParcelOverlapError", "PledgeLimitError", "RegistryError", "RegistryForbiddenError",
           "RegistryInputError", "USCCError", "ValuationError", "WebhookURLError"]


class RegistryError(Exception):
    """Base class of the registry's errors."""

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


class RegistryInputError(RegistryError, ValueError):
    """A request the registry cannot act on as given (unknown party, bad evidence digest, ...): 422."""


class RegistryForbiddenError(RegistryError):
    """The caller may see this object but may not do this to it (another bank's pledge, another county): 403."""


class AssetNotFoundError(RegistryError, LookupError):
    """No such asset, pledge or subscription, or none the caller may see: 404."""


class ParcelOverlapError(RegistryError):
    """The parcel overlaps one or more assets beyond the tolerance: 409, naming each asset and overlap."""

    def __init__(self, *, overlaps: list[dict], tolerance_ha: float):
        shown = "; ".join(f"parcel overlaps asset {o['asset_code']} by {o['overlap_ha']:.2f} ha" for o in overlaps)
        super().__init__(f"{shown} (tolerance {tolerance_ha:g} ha)", overlaps=overlaps, tolerance_ha=tolerance_ha)


class AssetStateError(RegistryError):
    """The asset's status does not allow this (not confirmed, not valued, retired, already confirmed): 409."""


class AssetPledgedError(AssetStateError):
    """A transfer or retirement while a pledge is active: 409 naming the pledge."""


class PledgeLimitError(RegistryError):
    """Active pledges would exceed the loan-to-value limit of the valuation's lower 95% bound: 409."""


class ValuationError(RegistryError, ValueError):
    """An accounting result that cannot value the asset (run not succeeded, parcel not in the run, no price): 422."""


class IdempotencyKeyReusedError(RegistryError, ValueError):
    """An Idempotency-Key already used for a different request: 422."""


class WebhookURLError(RegistryError, ValueError):
    """A webhook URL that is not http(s) to a loopback or configured host: 422."""
