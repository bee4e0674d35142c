"""HTTP-free errors of the rights registry, raised where the fault is understood. No Django.

`config/problems.py` maps each class to a status and a problem type; `extensions` become named members of the
problem (e.g. `overlaps`, `pledge_id`, `expected_check_character`).
"""

from ledger.core.errors import TranslatableError, gettext_noop
from ledger.registry.uscc import USCCError

__all__ = ["AssetNotFoundError", "AssetPledgedError", "AssetStateError", "IdempotencyKeyReusedError",
           "ParcelOverlapError", "PledgeLimitError", "PreconditionFailedError", "RegistryError",
           "RegistryForbiddenError", "RegistryInputError", "USCCError", "ValuationError"]


class RegistryError(TranslatableError):
    """Base class of the registry's errors: a message template with named values (`TranslatableError`), `field`
    naming the request field at fault when one is."""


class RegistryInputError(RegistryError, ValueError):
    """A request the registry cannot act on as given (unknown party, bad evidence digest, ...): 422."""

    http_status = 422
    problem_slug = "invalid-registry-request"
    problem_title = gettext_noop("Invalid registry request")


class RegistryForbiddenError(RegistryError):
    """The caller may see this object but may not do this to it (another bank's pledge, another county): 403."""

    http_status = 403
    problem_slug = "registry-forbidden"
    problem_title = gettext_noop("Not yours to change")


class AssetNotFoundError(RegistryError, LookupError):
    """No such asset, pledge or subscription, or none the caller may see: 404."""

    http_status = 404
    problem_slug = "not-found"
    problem_title = gettext_noop("Not found")


class ParcelOverlapError(RegistryError):
    """The parcel overlaps one or more assets beyond the tolerance: 409, naming each asset and overlap."""

    http_status = 409
    problem_slug = "parcel-overlaps-asset"
    problem_title = gettext_noop("Parcel overlaps a registered asset")

    EACH = gettext_noop("parcel overlaps asset %(asset_code)s by %(overlap_ha)s ha")
    TOLERANCE = gettext_noop("(tolerance %(tolerance_ha)s ha)")

    def __init__(self, *, overlaps: list[dict], tolerance_ha: float):
        super().__init__(self.localized(lambda text: text, overlaps=overlaps, tolerance_ha=tolerance_ha),
                         field="parcel", overlaps=overlaps, tolerance_ha=tolerance_ha)
        self.message_template = None  # assembled from parts: see localized()

    def localized(self, translate, *, overlaps: list[dict] | None = None, tolerance_ha: float | None = None) -> str:
        """The message with each part put through `translate` (gettext in a door, identity for English)."""
        overlaps = self.extensions["overlaps"] if overlaps is None else overlaps
        tolerance_ha = self.extensions["tolerance_ha"] if tolerance_ha is None else tolerance_ha
        shown = "; ".join(translate(self.EACH) % {"asset_code": o["asset_code"], "overlap_ha": f"{o['overlap_ha']:.2f}"}
                          for o in overlaps)
        return f"{shown} {translate(self.TOLERANCE) % {'tolerance_ha': f'{tolerance_ha:g}'}}"


class AssetStateError(RegistryError):
    """The asset's status does not allow this (not confirmed, not valued, retired, already confirmed): 409."""

    http_status = 409
    problem_slug = "asset-state"
    problem_title = gettext_noop("Asset cannot do this in its state")


class AssetPledgedError(AssetStateError):
    """A transfer or retirement while a pledge is active: 409 naming the pledge."""

    http_status = 409
    problem_slug = "asset-pledged"
    problem_title = gettext_noop("Asset is pledged")


class PledgeLimitError(RegistryError):
    """Active pledges would exceed the loan-to-value limit of the valuation's lower 95% bound: 409."""

    http_status = 409
    problem_slug = "pledge-limit-exceeded"
    problem_title = gettext_noop("Loan-to-value limit exceeded")


class PreconditionFailedError(RegistryError):
    """The asset is no longer what the caller expected when it asked for the change (its ETag in If-Match, its
    holder in `expected_holder`): 412, naming the asset's current `etag` and `holder`. Nothing was changed."""

    http_status = 412
    problem_slug = "precondition-failed"
    problem_title = gettext_noop("Precondition failed")


class ValuationError(RegistryError, ValueError):
    """An accounting result that cannot value the asset (run not succeeded, parcel not in the run, no price): 422."""

    http_status = 422
    problem_slug = "cannot-value-asset"
    problem_title = gettext_noop("Cannot value the asset")


class IdempotencyKeyReusedError(RegistryError, ValueError):
    """An Idempotency-Key already used for a different request: 422."""

    http_status = 422
    problem_slug = "idempotency-key-reused"
    problem_title = gettext_noop("Idempotency key used for another request")
