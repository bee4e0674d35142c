"""Production settings: refuse to start without each secret, pass `check --deploy` with them, never generate keys.

Each subprocess gets a clean environment (only PATH and a throwaway TANHUI_VAR_DIR besides what the test sets), so
nothing from the developer's shell or from the test settings leaks in.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import settings_module_select
from ledger.core import note

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "tanhui.example.org/registry"
PRODUCTION_CHECK = "production settings refuse to start"


def run(args: list[str], env: dict[str, str], var_dir: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TANHUI_VAR_DIR": str(var_dir),
             "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env={**clean, **env}, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture
def key_file(tmp_path) -> Path:
    """A signing key made by the project's own key generation, in a file of its own."""
    path = tmp_path / "ledger.skey"
    path.write_text(note.generate_signer(ORIGIN).skey + "\n")
    return path


@pytest.fixture
def var_dir(tmp_path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def production_env(key_file) -> dict[str, str]:
    return {
        "TANHUI_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "tanhui.example.org",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "LEDGER_SIGNING_KEY_FILE": str(key_file),
        "LEDGER_ORIGIN": ORIGIN,
    }


def test_check_deploy_passes_with_every_variable_set(production_env, var_dir):
    """With the required variables (and DEBUG=1, which production ignores) Django's deployment checks are clean."""
    result = run(["manage.py", "check", "--deploy"], {**production_env, "DEBUG": "1"}, var_dir)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr and "security.W" not in result.stderr, result.stderr
    assert not (var_dir / "secret_key").exists()
    assert not (var_dir / "keys").exists()


MISSING = [  # (variables removed, the words the refusal must contain)
    (["SECRET_KEY"], "SECRET_KEY is required"),
    (["ALLOWED_HOSTS"], "ALLOWED_HOSTS is required"),
    (["DATABASE_URL"], "DATABASE_URL is required"),
    (["LEDGER_SIGNING_KEY_FILE"], "LEDGER_SIGNING_KEY or LEDGER_SIGNING_KEY_FILE is required"),
    (["LEDGER_ORIGIN"], "LEDGER_ORIGIN is required"),
]


@pytest.mark.parametrize(("removed", "words"), MISSING, ids=[m[0][0] for m in MISSING])
def test_refuses_to_start_naming_the_missing_variable(production_env, var_dir, removed, words):
    env = {name: value for name, value in production_env.items() if name not in removed}
    result = run(["manage.py", "check"], env, var_dir)
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert words in result.stderr
    for other_words in {w for _, w in MISSING} - {words}:
        assert other_words not in result.stderr  # only what is missing is named
    assert not (var_dir / "secret_key").exists()  # base.py's generated secret never stands in


def test_an_empty_variable_counts_as_missing(production_env, var_dir):
    result = run(["manage.py", "check"], {**production_env, "SECRET_KEY": "  "}, var_dir)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_refusal_names_every_missing_variable_at_once(var_dir):
    result = run(["manage.py", "check"], {"TANHUI_ENV": "production"}, var_dir)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"django.core.exceptions.ImproperlyConfigured: {PRODUCTION_CHECK}: ")
    for _, words in MISSING:
        assert words in message
    assert not var_dir.exists()  # refused before base.py made var/static or var/secret_key


def test_selected_by_django_settings_module_too(var_dir):
    result = run(["manage.py", "check"], {"DJANGO_SETTINGS_MODULE": "config.settings.production"}, var_dir)
    assert result.returncode != 0
    assert PRODUCTION_CHECK in result.stderr


def test_unreadable_key_file_is_named(production_env, var_dir, tmp_path):
    absent = tmp_path / "no-such.skey"
    result = run(["manage.py", "check"], {**production_env, "LEDGER_SIGNING_KEY_FILE": str(absent)}, var_dir)
    assert result.returncode != 0
    assert f"LEDGER_SIGNING_KEY_FILE {absent} is not a readable file (No such file or directory)" in result.stderr


def test_malformed_inline_key_is_named_without_showing_it(production_env, var_dir):
    good = note.generate_signer(ORIGIN).skey
    private, key, name, key_id, encoded = good.split("+", 4)
    wrong_id = f"{int(key_id, 16) ^ 1:08x}"
    bad = "+".join([private, key, name, wrong_id, encoded])
    env = {**production_env, "LEDGER_SIGNING_KEY": bad}
    del env["LEDGER_SIGNING_KEY_FILE"]
    result = run(["manage.py", "check"], env, var_dir)
    assert result.returncode != 0
    assert f"LEDGER_SIGNING_KEY: signer key ID {wrong_id} does not match its key" in result.stderr
    assert encoded not in result.stderr  # the private key never reaches a log


def test_sqlite_database_is_refused(production_env, var_dir, tmp_path):
    env = {**production_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'registry.sqlite3'}"}
    result = run(["manage.py", "check"], env, var_dir)
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL (postgres://...), not 'sqlite'" in result.stderr


@pytest.mark.parametrize("entry_point", [
    ["manage.py", "check"],
    ["-c", "import config.wsgi"],
    ["-c", "import config.asgi"],
    ["-c", "from config.celery import app; app.conf.broker_url"],
], ids=["manage.py", "wsgi", "asgi", "celery"])
def test_tanhui_env_production_selects_production_in_every_entry_point(var_dir, entry_point):
    """With DJANGO_SETTINGS_MODULE unset and nothing else configured, each entry point must load production (and
    so refuse); base settings would have started and generated var/secret_key."""
    result = run(entry_point, {"TANHUI_ENV": "production"}, var_dir)
    assert result.returncode != 0
    assert PRODUCTION_CHECK in result.stderr
    assert not (var_dir / "secret_key").exists()


def test_unknown_tanhui_env_is_refused(var_dir):
    result = run(["manage.py", "check"], {"TANHUI_ENV": "prod"}, var_dir)
    assert result.returncode != 0
    assert "TANHUI_ENV must be one of development, production; got 'prod'" in result.stderr


@pytest.mark.parametrize(("environ", "want"), [
    ({}, "config.settings.base"),
    ({"TANHUI_ENV": "development"}, "config.settings.base"),
    ({"TANHUI_ENV": "production"}, "config.settings.production"),
    ({"TANHUI_ENV": "Production "}, "config.settings.production"),
    ({"TANHUI_ENV": "production", "DJANGO_SETTINGS_MODULE": "config.settings.test"}, "config.settings.test"),
])
def test_settings_module_select(monkeypatch, environ, want):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("TANHUI_ENV", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert settings_module_select() == want
    assert os.environ["DJANGO_SETTINGS_MODULE"] == want


RUNNING_CHECKS = """
from django.conf import settings
from django.test import Client
from ledger.log.keys import signing_key_load
print("settings", settings.SETTINGS_MODULE, "debug", settings.DEBUG)
print("vkey", signing_key_load().verifier.vkey)
client = Client()
plain = client.get("/accounts/login/", HTTP_HOST="tanhui.example.org")
print("plain", plain.status_code, plain["Location"])
proxied = client.get("/accounts/login/", HTTP_HOST="tanhui.example.org", HTTP_X_FORWARDED_PROTO="https")
print("proxied", proxied.status_code, proxied["Strict-Transport-Security"], proxied.cookies["csrftoken"]["secure"])
"""


def test_running_production_signs_with_the_file_key_and_serves_https_only(production_env, var_dir, key_file):
    env = {**production_env, "DEBUG": "1", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}
    result = run(["manage.py", "shell", "-c", RUNNING_CHECKS], env, var_dir)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["settings"] == "config.settings.production debug False"
    assert lines["vkey"] == note.parse_signer_key(key_file.read_text()).verifier.vkey
    assert lines["plain"] == "301 https://tanhui.example.org/accounts/login/"
    assert lines["proxied"] == "200 max-age=31536000; includeSubDomains; preload True"
    assert not (var_dir / "keys").exists()  # nothing generated beside the configured key


# --- the key loader itself, with generation off as production sets it ----------------------------------------------


def test_no_generation_when_generate_is_off(settings, ledger_key_file):
    from ledger.core.errors import SigningKeyError
    from ledger.log.keys import signing_key_load, signing_key_rotate

    settings.LEDGER_SIGNING_KEY_GENERATE = False
    with pytest.raises(SigningKeyError, match="no signing key configured: set LEDGER_SIGNING_KEY or "
                                              "LEDGER_SIGNING_KEY_FILE"):
        signing_key_load()
    with pytest.raises(SigningKeyError, match="no signing key configured"):
        signing_key_rotate()
    assert not ledger_key_file.exists()


def test_a_leftover_default_key_is_not_used_when_generate_is_off(settings, ledger_key_file):
    from ledger.core.errors import SigningKeyError
    from ledger.log.keys import signing_key_load

    signing_key_load()  # generation on: the embedded default writes var/keys/ledger.skey
    assert ledger_key_file.exists()
    settings.LEDGER_SIGNING_KEY_GENERATE = False
    with pytest.raises(SigningKeyError, match="no signing key configured"):
        signing_key_load()


def test_configured_key_file_is_used_when_generate_is_off(settings, key_file, ledger_key_file):
    from ledger.log.keys import signing_key_load

    settings.LEDGER_SIGNING_KEY_GENERATE = False
    settings.LEDGER_SIGNING_KEY_FILE = str(key_file)
    assert signing_key_load().skey == key_file.read_text().strip()
    assert not ledger_key_file.exists()


@pytest.mark.parametrize(("change", "words"), [
    ({"LEDGER_ORIGIN": "tanhui.local/registry"}, "but LEDGER_ORIGIN is 'tanhui.local/registry'"),
    ({"SECRET_KEY": "abc"}, "SECRET_KEY is too weak"),
    ({"SECRET_KEY": "a" * 60}, "SECRET_KEY is too weak"),
    ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS may not be '*'"),
])
def test_an_unusable_value_is_refused_by_name(production_env, var_dir, change, words):
    """Seen before: a key named otherwise than LEDGER_ORIGIN passed the checks, and every bundle then failed the
    bank's verifier ("origin ... is not the name of the key that signed it"); a three-letter secret passed too."""
    result = run(["manage.py", "check", "--deploy"], {**production_env, **change}, var_dir)
    assert result.returncode != 0
    assert PRODUCTION_CHECK in result.stderr and words in result.stderr

