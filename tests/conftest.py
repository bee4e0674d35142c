import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("TANHUI_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
REQUIRE_SHARED_DATA = os.environ.get("REQUIRE_SHARED_DATA") == "1"


def shared_path(*parts: str) -> Path:
    """A file under ../shared/: skip when it is absent (a fresh clone), fail when REQUIRE_SHARED_DATA=1."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        message = f"{path} is absent: the real data in ../shared/ is not beside this checkout"
        if REQUIRE_SHARED_DATA:
            pytest.fail(message + " (REQUIRE_SHARED_DATA=1)")
        pytest.skip(message, allow_module_level=True)  # also when a module loads vectors to parametrize
    return path


def services_available() -> str | None:
    """None when PostgreSQL and a broker are configured; otherwise why not."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "needs DATABASE_URL pointing at PostgreSQL"
    if not settings.CELERY_BROKER_URL:
        return "needs CELERY_BROKER_URL and a running Celery worker"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("services"):
            reason = services_available()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"real services: {reason}"))


@pytest.fixture(autouse=True)
def _celery_mode(request, settings):
    """Tests run tasks in-process unless marked `services`, which send them through the real broker."""
    from config.celery import app

    eager = request.node.get_closest_marker("services") is None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


# --- the API contract: every response to /api/ is checked against the OpenAPI schema -------------------------------

@pytest.fixture(autouse=True)
def _api_responses_follow_the_schema(monkeypatch):
    """Every response a test client receives for a path under /api/ is checked against the OpenAPI schema
    (tests/foundation/contract.py); a response the schema does not allow fails the test that caused it."""
    from django.test.client import Client, FakePayload

    from tests.foundation.contract import check_client_response

    original = Client.request

    def request(self, **kwargs):
        __tracebackhide__ = True
        body = b""
        if "wsgi.input" in kwargs:  # read the body the client sends, then hand the view an unread copy
            body = kwargs["wsgi.input"].read(int(kwargs.get("CONTENT_LENGTH") or 0))
            kwargs["wsgi.input"] = FakePayload(body)
        response = original(self, **kwargs)
        check_client_response(response, request_body=body, request_content_type=kwargs.get("CONTENT_TYPE"))
        return response

    monkeypatch.setattr(Client, "request", request)


@pytest.fixture(autouse=True)
def checkpoint_requests(monkeypatch):
    """The checkpoints that reads request in-process (no broker; `ledger.bundles.services.checkpoint_request`),
    recorded as [(delay_s, work)] instead of run on a timer thread behind the test; a test runs one with `work()`.
    Each test starts with no request standing."""
    from ledger.bundles import services

    requested = []
    monkeypatch.setattr(services, "_in_process_later", lambda delay_s, work: requested.append((delay_s, work)))
    monkeypatch.setattr(services, "_requested_until", [float("-inf")])
    return requested


@pytest.fixture
def api_user(db):
    """Factory: api_user("bank") -> (user, APIClient authenticated with the user's token)."""
    from rest_framework.test import APIClient

    from geo.accounts import api_user_create

    counter = iter(range(1, 10_000))

    def make(role: str, county: str | None = None, username: str | None = None):
        if role == "bureau" and county is None:
            county = "510727"
        user, token = api_user_create(username=username or f"{role}-{next(counter)}", role=role, county_code=county)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return user, client

    return make


# --- ledger -------------------------------------------------------------------------------------------------------


def _postgres_unavailable() -> str | None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "needs DATABASE_URL pointing at PostgreSQL"
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres"):
        reason = _postgres_unavailable()
        if reason:
            pytest.skip(f"postgres: {reason}")


def _ledger_truncate_allowed(sender, connection, **kwargs):
    """Let Django's test flush TRUNCATE the append-only ledger tables (see ledger/migrations/0002)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET tanhui.ledger_truncate = 'allow'")


def pytest_configure(config):
    from django.db.backends.signals import connection_created

    connection_created.connect(_ledger_truncate_allowed, dispatch_uid="tanhui-ledger-truncate")


@pytest.fixture(autouse=True)
def ledger_key_file(settings, tmp_path):
    """Each test signs with a fresh key in its own folder, never the developer's var/keys/."""
    settings.LEDGER_SIGNING_KEY_FILE = None
    settings.LEDGER_SIGNING_KEY = None
    settings.VAR_DIR = tmp_path / "var"
    settings.LEDGER_ORIGIN = "tanhui.local/test-registry"
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 3600
    return tmp_path / "var" / "keys" / "ledger.skey"


# --- a broker that is down or hangs --------------------------------------------------------------------------------

class BrokerFault:
    """Tasks published through a real (kombu, Redis transport) connection to a broker on 127.0.0.1 that refuses
    connections (`down`) or accepts them and never answers (`hang`); `up` goes back to in-process (inline) tasks."""

    def __init__(self, monkeypatch):
        from config.celery import app

        self.app, self.monkeypatch, self.hung = app, monkeypatch, None
        self.connection_for_write = app.connection_for_write

    def _publish_to(self, url: str) -> None:
        from accounting import outbox

        self.app.conf.task_always_eager = False  # _celery_mode puts it back after the test
        outbox._broker_failed_at[0] = None  # forget what earlier tests' brokers did
        self.monkeypatch.setattr(self.app, "connection_for_write",
                                 lambda *_, **options: self.connection_for_write(url, **options))

    def down(self) -> None:
        import socket

        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._publish_to(f"redis://127.0.0.1:{port}/0")

    def hang(self) -> None:
        import socket

        self.hung = socket.socket()
        self.hung.bind(("127.0.0.1", 0))
        self.hung.listen(64)  # the kernel completes the handshake; nobody ever reads or answers
        self._publish_to(f"redis://127.0.0.1:{self.hung.getsockname()[1]}/0")

    def up(self) -> None:
        from accounting import outbox

        self.app.conf.task_always_eager = True
        outbox._broker_failed_at[0] = None
        self.monkeypatch.setattr(self.app, "connection_for_write", self.connection_for_write)

    def close(self) -> None:
        from accounting import outbox

        outbox._broker_failed_at[0] = None
        if self.hung is not None:
            self.hung.close()


@pytest.fixture
def broker(monkeypatch):
    fault = BrokerFault(monkeypatch)
    yield fault
    fault.close()
