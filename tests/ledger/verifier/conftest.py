"""The verifier's tests check bundles built by the registry (the bundles' fixtures)."""

from tests.ledger.bundles.conftest import bundle, registry_key, registry_settings, roles, scene  # noqa: F401
