"""The ledger's settings, with their defaults in one table. Read through `ledger_setting(name)`.

Each may be set in Django settings or, failing that, in the environment variable of the same name.

- LEDGER_ORIGIN: the checkpoint origin line and the signing key's name, e.g. "tanhui.local/510727".
- LEDGER_CHECKPOINT_INTERVAL_S: at most one checkpoint per this many seconds (after appends).
- LEDGER_SIGNING_KEY: a signer key string (Go's PRIVATE+KEY+... form). Takes precedence over the file.
- LEDGER_SIGNING_KEY_FILE: a file holding that string. Default: VAR_DIR/keys/ledger.skey, created on first use.
- LEDGER_SIGNING_KEY_GENERATE: whether that default key may be generated when no key is configured (the embedded
  default). Production settings turn it off: every web machine signs with the one configured key, none makes its own.
"""

from django.conf import settings

from config.common.env import env_bool, env_int, env_str

DEFAULTS = {
    "LEDGER_ORIGIN": "tanhui.local/registry",
    "LEDGER_CHECKPOINT_INTERVAL_S": 60,
    "LEDGER_SIGNING_KEY": None,
    "LEDGER_SIGNING_KEY_FILE": None,
    "LEDGER_SIGNING_KEY_GENERATE": True,
}


def ledger_setting(name: str):
    """The setting `name` from Django settings, else the environment, else DEFAULTS; unknown names raise."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown ledger setting {name!r}; known: {', '.join(sorted(DEFAULTS))}")
    if hasattr(settings, name):
        return getattr(settings, name)
    default = DEFAULTS[name]
    if isinstance(default, bool):
        return env_bool(name, default)
    if isinstance(default, int):
        return env_int(name, default)
    return env_str(name, default)


def default_key_file():
    return settings.VAR_DIR / "keys" / "ledger.skey"
