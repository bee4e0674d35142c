"""HTTP-free errors of webhook subscriptions. No Django."""

from ledger.core.errors import gettext_noop
from ledger.registry.errors import RegistryError


class WebhookURLError(RegistryError, ValueError):
    """A webhook URL that is not http(s) to a loopback or configured host: 422."""

    http_status = 422
    problem_slug = "webhook-url-refused"
    problem_title = gettext_noop("Webhook URL refused")
