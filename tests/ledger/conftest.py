import pytest


@pytest.fixture(autouse=True)
def ledger_key_file(settings, tmp_path):
    """Each test signs with a fresh key in its own folder, never the developer's var/keys/."""
    settings.LEDGER_SIGNING_KEY_FILE = None
    settings.LEDGER_SIGNING_KEY = None
    settings.VAR_DIR = tmp_path / "var"
    settings.LEDGER_ORIGIN = "tanhui.local/test-registry"
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 3600
    return tmp_path / "var" / "keys" / "ledger.skey"
