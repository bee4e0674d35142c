"""PostgreSQL: appends commit without holding the head lock through the WAL flush, yet nobody is told of, or
shown, an entry before it is on disk (docs/ledger.md, "Commit and durability")."""

import psycopg
import pytest
from django.db import connection, transaction

from ledger.core.errors import DurabilityUnconfirmedError
from ledger.log import services
from ledger.log.services import checkpoint_sign_latest, entry_append
from ledger.models import Entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _lsn(function: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}()")
        high, low = str(cursor.fetchone()[0]).split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def _wal_pending() -> int:
    """Commit one WAL record without waiting for its flush; return an LSN at or past it that is not yet on disk.

    The WAL writer flushes on its own every wal_writer_delay (200 ms by default), so try until we catch a moment
    before it does; failing that, the test cannot tell anything and says so."""
    for _ in range(50):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO off")
            cursor.execute("SELECT pg_logical_emit_message(true, 'tanhui.test', 'x')")
        written = _lsn("pg_current_wal_insert_lsn")
        if _lsn("pg_current_wal_flush_lsn") < written:
            return written
    pytest.fail("the WAL was always flushed before we could look; cannot test the wait")


def test_wal_flush_returns_once_a_commit_made_without_waiting_is_on_disk():
    written = _wal_pending()
    services._wal_flush()
    assert _lsn("pg_current_wal_flush_lsn") >= written


def test_one_flush_per_appending_transaction_after_its_commit_and_a_savepoint_rollback_undoes_it(monkeypatch):
    calls = []
    real_flush = services._wal_flush
    monkeypatch.setattr(services, "_wal_flush", lambda: (calls.append(transaction.get_autocommit()), real_flush()))
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            entry_append(kind="test.note", payload={"n": 0})
            assert _synchronous_commit() == "off"
            raise RuntimeError("the caller's own work failed")
        assert _synchronous_commit() == "on"  # undone with the savepoint, as was its flush callback
        entry_append(kind="test.note", payload={"n": 1})
        entry_append(kind="test.note", payload={"n": 2})
        assert _synchronous_commit() == "off"  # the lock is not held through the flush
        assert calls == []
    assert calls == [True]  # once, after the commit (autocommit again)
    assert _synchronous_commit() == "on"
    assert list(Entry.objects.values_list("seq", flat=True)) == [0, 1]


def test_checkpoints_commit_synchronously_whichever_comes_first_in_the_transaction():
    with transaction.atomic():
        entry_append(kind="test.note", payload={"n": 0})
        assert checkpoint_sign_latest(force=True).tree_size == 1
        assert _synchronous_commit() == "on"
    with transaction.atomic():
        entry_append(kind="test.note", payload={"n": 1})
    with transaction.atomic():
        assert checkpoint_sign_latest(force=True).tree_size == 2
        entry_append(kind="test.note", payload={"n": 2})
        assert _synchronous_commit() == "on"  # the append did not switch it off again


def test_a_failed_wait_is_reported_not_retried_and_the_entry_is_not_announced():
    # The server ends this session just before the wait, as a restart or failover would. A retry on a new
    # connection could not tell whether that server still holds the commit, so the caller is told the truth.
    announced = []
    with (pytest.raises(DurabilityUnconfirmedError, match="committed, but the database did not confirm"),
          transaction.atomic()):
        pid = connection.connection.info.backend_pid
        transaction.on_commit(lambda: _terminate(pid))
        entry_append(kind="test.note", payload={"n": 0})
        transaction.on_commit(lambda: announced.append("webhooks sent"))
    assert announced == []
    connection.close()
    assert Entry.objects.count() == 1  # committed (this test loses no WAL), though unconfirmed at the time


def _terminate(pid: int) -> None:
    database = connection.settings_dict
    with psycopg.connect(host=database["HOST"], port=database["PORT"] or 5432, user=database["USER"],
                         dbname=database["NAME"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


def test_an_unconfirmed_append_over_http_is_a_503_problem(api_user, monkeypatch):
    monkeypatch.setattr(services, "_WAL_FLUSH", "SELECT tanhui_no_such_function()")
    _, client = api_user("bureau")
    response = client.post("/api/parties/", {"kind": "household", "name": "赵春华户"}, format="json")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("durability-unconfirmed")
    assert "committed, but the database did not confirm" in response.json()["detail"]


def test_a_read_whose_wait_fails_is_a_503_problem_not_the_view_response(api_user, monkeypatch):
    entry_append(kind="test.note", payload={"n": 0})
    _, client = api_user("bank")
    monkeypatch.setattr(services, "_WAL_FLUSH", "SELECT tanhui_no_such_function()")
    response = client.get("/api/ledger/entries/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("durability-unconfirmed")


def test_a_response_is_sent_only_once_what_it_could_read_is_on_disk(api_user, monkeypatch):
    # The WAL writer also flushes on its own, within milliseconds when the server is idle, so watch the wait
    # itself: it runs once, after the view has read the entries, and reaches past what was pending.
    entry_append(kind="test.note", payload={"n": 0})
    _, client = api_user("bank")
    waits, real_flush = [], services._wal_flush

    def flush_watched():
        waits.append(written)
        real_flush()
        waits.append(_lsn("pg_current_wal_flush_lsn"))

    monkeypatch.setattr(services, "_wal_flush", flush_watched)
    written = _wal_pending()
    response = client.get("/api/ledger/entries/")
    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert len(waits) == 2
    assert waits[1] >= waits[0]
