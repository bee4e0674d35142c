"""HTTP-free errors of the pledge bundle and its verifier. Pure: imports nothing beyond `ledger.core.errors`.

`config/problems.py` maps them to problem+json; the offline verifier (`python -m ledger.verifier`) maps them to its
exit codes: BundleInvalidError is 1 (the bundle is well formed but something in it does not hold), BundleFormatError
is 2 (the input cannot be checked at all).
"""

from ledger.core.errors import LedgerError, gettext_noop


class BundleError(LedgerError):
    """Base class of the bundle's errors."""


class BundleFormatError(BundleError, ValueError):
    """Unusable input: not JSON, not an object, another format version, or a trusted key or checkpoint that cannot
    be read. Nothing was verified."""

    http_status = 422
    problem_slug = "unusable-bundle"
    problem_title = gettext_noop("Bundle cannot be verified")

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


class BundleInvalidError(BundleError, ValueError):
    """The first check that fails. `field` names the part of the bundle at fault, e.g. "entries[2]" or
    "proofs[1].hashes"; `reason` says what was expected and what came."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason
        self.extensions = {"field": field, "reason": reason}


class RPCUnavailableError(BundleError):
    """The anchor could not be checked because the JSON-RPC endpoint did not answer usefully (exit 2)."""

    http_status = 503
    problem_slug = "anchor-rpc-unavailable"
    problem_title = gettext_noop("Chain RPC unavailable")
