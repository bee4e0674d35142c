"""Production settings: base.py with every secret and every shared resource required from the environment.

Selected by DJANGO_SETTINGS_MODULE=config.settings.production, or by TANHUI_ENV=production when that is unset.
Before base.py runs, `production_problems` checks the environment and startup stops with ImproperlyConfigured
naming every missing or unusable variable, so none of base's embedded defaults (a secret key generated into
var/secret_key, an SQLite file under var/, a signing key generated on first use) can stand in for them. Several web
machines share one database and one ledger: none of them may make up a key of its own.

Then it sets what `manage.py check --deploy` asks for: DEBUG off whatever DEBUG says, secure cookies, HSTS and
the HTTPS redirect (README, Production; behind a TLS proxy name its header in SECURE_PROXY_SSL_HEADER).
"""

import os
from collections.abc import Mapping
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.common.env import env_bool, env_int, env_str
from ledger.core.errors import NoteError
from ledger.core.note import parse_signer_key

REQUIRED = {  # variable: what it is, for the message that says it is missing
    "SECRET_KEY": "Django's secret key, 50 or more random characters, the same on every web machine",
    "ALLOWED_HOSTS": "the comma-separated host names the service answers to, e.g. tanhui.example.org",
    "DATABASE_URL": "the PostgreSQL registry, e.g. postgres://tanhui@db.example.org:5432/tanhui",
    "LEDGER_ORIGIN": "the registry's checkpoint origin, e.g. tanhui.example.org/510727; the signing key's name",
}
MIN_SECRET_KEY_LENGTH, MIN_SECRET_KEY_UNIQUE = 50, 5  # Django's own bar (security.W009)
SIGNING_KEY_MEANING = ("the registry's Ed25519 signing key, shared by every web machine and never generated in "
                       "production: LEDGER_SIGNING_KEY (the PRIVATE+KEY+... string) or LEDGER_SIGNING_KEY_FILE "
                       "(a readable file holding it)")


def _signing_key_problem(environ: Mapping[str, str]) -> str | None:
    """Why the configured signing key is unusable, or None. The key's own text never goes into a message."""
    inline = environ.get("LEDGER_SIGNING_KEY", "").strip()
    file_name = environ.get("LEDGER_SIGNING_KEY_FILE", "").strip()
    if inline:
        where, text = "LEDGER_SIGNING_KEY", inline
    elif file_name:
        where = f"LEDGER_SIGNING_KEY_FILE {file_name}"
        try:
            text = Path(file_name).read_text()
        except OSError as error:
            return f"{where} is not a readable file ({error.strerror or error})"
    else:
        return f"LEDGER_SIGNING_KEY or LEDGER_SIGNING_KEY_FILE is required ({SIGNING_KEY_MEANING})"
    try:
        signer = parse_signer_key(text)
    except NoteError as error:
        return f"{where}: {error}"
    origin = environ.get("LEDGER_ORIGIN", "").strip()
    if origin and signer.name != origin:
        # A bank's verifier accepts a checkpoint only from the key named as its origin: every bundle would fail.
        return (f"{where} is a key named {signer.name!r}, but LEDGER_ORIGIN is {origin!r}: they must be the same, "
                f"or no bank can verify a checkpoint")
    return None


def production_problems(environ: Mapping[str, str]) -> list[str]:
    """Every reason `environ` cannot run production, one sentence each naming its variable; empty when it can."""
    problems = [f"{name} is required ({meaning})" for name, meaning in REQUIRED.items()
                if not environ.get(name, "").strip()]
    database_url = environ.get("DATABASE_URL", "").strip()
    if database_url:
        try:
            engine = dj_database_url.parse(database_url)["ENGINE"]
        except Exception as error:  # dj_database_url raises bare ValueError/KeyError for unknown schemes
            engine = f"unparseable ({type(error).__name__})"
        if engine != "django.db.backends.postgresql":
            scheme = database_url.split(":", 1)[0]
            problems.append(f"DATABASE_URL must point at PostgreSQL (postgres://...), not {scheme!r}: the ledger's "
                            f"append-only trigger and the registry's locks need it")
    secret_key = environ.get("SECRET_KEY", "").strip()
    if secret_key and (len(secret_key) < MIN_SECRET_KEY_LENGTH or len(set(secret_key)) < MIN_SECRET_KEY_UNIQUE
                       or secret_key.startswith("django-insecure")):
        problems.append(f"SECRET_KEY is too weak: want {MIN_SECRET_KEY_LENGTH} or more random characters, "
                        f"{MIN_SECRET_KEY_UNIQUE} or more of them different")
    if "*" in [host.strip() for host in environ.get("ALLOWED_HOSTS", "").split(",")]:
        problems.append("ALLOWED_HOSTS may not be '*': name the host names the service answers to")
    signing_key_problem = _signing_key_problem(environ)
    if signing_key_problem:
        problems.append(signing_key_problem)
    return problems


_problems = production_problems(os.environ)
if _problems:
    raise ImproperlyConfigured("production settings refuse to start: " + "; ".join(_problems))

from config.settings.base import *  # noqa: E402, F403  (only once the environment is known to be complete)

DEBUG = False  # whatever DEBUG says: debug pages show settings and source to anyone who triggers an error

# The signing key comes from LEDGER_SIGNING_KEY or LEDGER_SIGNING_KEY_FILE (checked above); ledger.log.keys
# refuses to generate one when it finds neither.
LEDGER_SIGNING_KEY_GENERATE = False

# HTTPS only. Behind a TLS proxy that talks plain HTTP to gunicorn, SECURE_PROXY_SSL_HEADER names the header the
# proxy sets (and overwrites) to say the client used HTTPS: "X-Forwarded-Proto" (value https) or "Name: value".
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe health over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)


def _proxy_ssl_header(value: str | None) -> tuple[str, str] | None:
    """("HTTP_X_FORWARDED_PROTO", "https") from "X-Forwarded-Proto", or from "Name: value" with that value."""
    if value is None:
        return None
    name, _, wanted = value.partition(":")
    name, wanted = name.strip(), wanted.strip() or "https"
    if not name or any(c.isspace() for c in name):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto, "
                                   f"optionally followed by ': value'; got {value!r}")
    return "HTTP_" + name.upper().replace("-", "_"), wanted


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER"))
