"""Webhook tests run on the registry's fixtures (its settings, parties and roles)."""

from tests.ledger.registry.conftest import registry_settings, roles  # noqa: F401
