"""Runs and faults: a broker that is down or hangs when a run is queued, a worker killed mid-run, duplicate tasks.

The run's task goes through the app's outbox (accounting.outbox); an execution claims the run and beats; the
stale-run sweep takes over a silent one; only the execution that holds a run writes its results.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounting import services
from accounting.models import AccountingRun, Outbox, ParcelResult
from accounting.outbox import outbox_send, outbox_send_pending
from accounting.services import accounting_run_execute, accounting_runs_requeue_stale
from tests.accounting import test_runs
from tests.accounting.test_runs import parcel_feature, start_run

bureau, setup = test_runs.bureau, test_runs.setup  # the runs tests' fixtures

pytestmark = pytest.mark.django_db


def run_body(setup) -> dict:
    return {"method_version": setup["method"], "raster": setup["r2020"], "county": "510727"}


@pytest.mark.parametrize("fault", ["down", "hang"])
def test_a_run_queued_with_the_broker_out_answers_202_and_starts_when_it_is_back(
        bureau, setup, broker, fault, django_capture_on_commit_callbacks):
    getattr(broker, fault)()
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):  # the commit, then the publish that fails
        response = bureau.post("/api/runs/", run_body(setup), format="json")
    elapsed_s = time.monotonic() - started
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    assert elapsed_s < 3, f"queueing a run took {elapsed_s:.1f} s with the broker {fault}"
    row = Outbox.objects.get()
    assert (row.task, row.args, row.sent_at, row.send_failures) == ("accounting.run_execute",
                                                                     [response.json()["id"]], None, 1)
    assert row.last_error  # what the broker said, e.g. "OperationalError: Error 111 connecting ..."
    # The sweep while it is still out: still unsent, nothing lost.
    assert outbox_send_pending(Outbox) == 0
    broker.up()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_send_pending(Outbox) == 1
    run = bureau.get(f"/api/runs/{response.json()['id']}/").json()
    assert run["status"] == "succeeded", run["failure_reason"]
    assert Outbox.objects.get().sent_at is not None
    assert ParcelResult.objects.filter(run_id=run["id"]).count() == 2


def test_a_row_is_published_once_and_a_held_claim_is_left_alone(bureau, setup, django_capture_on_commit_callbacks):
    response = start_run(bureau, django_capture_on_commit_callbacks, **run_body(setup))
    row = Outbox.objects.get()
    assert row.sent_at is not None and row.claimed_at is None
    assert outbox_send(Outbox, ids=[row.id]) == 0  # sent rows are not sent again
    # A row another sender claimed a moment ago is its; a claim older than OUTBOX_CLAIM_S is a dead sender's.
    Outbox.objects.filter(id=row.id).update(sent_at=None, claimed_at=timezone.now())
    assert outbox_send(Outbox) == 0
    Outbox.objects.filter(id=row.id).update(claimed_at=timezone.now() - timedelta(minutes=5))
    assert outbox_send(Outbox) == 1
    assert AccountingRun.objects.get(id=response.json()["id"]).attempt == 1  # the second message did nothing


def _silent(run_id: int, *, seconds_ago: int) -> AccountingRun:
    """Make run `run_id` look as a killed worker leaves it: running, no results, last heartbeat long ago."""
    ParcelResult.objects.filter(run_id=run_id).delete()
    AccountingRun.objects.filter(id=run_id).update(
        status=AccountingRun.RUNNING, totals=None, finished_at=None,
        heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago))
    return AccountingRun.objects.get(id=run_id)


def test_the_sweep_takes_over_a_run_whose_worker_stopped_beating(bureau, setup, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.RUN_STALE_AFTER_S = 60
    run_id = start_run(bureau, django_capture_on_commit_callbacks, **run_body(setup)).json()["id"]
    figures = list(ParcelResult.objects.filter(run_id=run_id).order_by("parcel_id").values_list("figures", flat=True))
    _silent(run_id, seconds_ago=30)
    assert accounting_runs_requeue_stale() == []  # 30 s of silence is not yet stale
    _silent(run_id, seconds_ago=90)
    with django_capture_on_commit_callbacks(execute=True):
        assert accounting_runs_requeue_stale() == [run_id]
    run = AccountingRun.objects.get(id=run_id)
    assert (run.status, run.attempt) == ("succeeded", 2)
    assert list(ParcelResult.objects.filter(run_id=run_id).order_by("parcel_id").values_list(
        "figures", flat=True)) == figures  # written once, the same numbers
    assert accounting_runs_requeue_stale() == []


def test_a_take_over_is_refused_when_the_holder_beat_again(bureau, setup, django_capture_on_commit_callbacks):
    run_id = start_run(bureau, django_capture_on_commit_callbacks, **run_body(setup)).json()["id"]
    silent = _silent(run_id, seconds_ago=600)
    seen = silent.heartbeat_at.isoformat()
    AccountingRun.objects.filter(id=run_id).update(heartbeat_at=timezone.now())  # it was only slow
    assert accounting_run_execute(run_id=run_id, take_over=silent.attempt, seen_heartbeat=seen).attempt == 1
    assert accounting_run_execute(run_id=run_id, take_over=silent.attempt + 1,
                                  seen_heartbeat=timezone.now().isoformat()).attempt == 1  # not its holder


def test_an_execution_that_lost_its_claim_writes_nothing(bureau, setup, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    """A worker thought dead (silent past RUN_STALE_AFTER_S) that comes back after the take-over: its results
    are dropped, the take-over's stand, and the run has one result per parcel."""
    run_id = start_run(bureau, django_capture_on_commit_callbacks, **run_body(setup)).json()["id"]
    ParcelResult.objects.filter(run_id=run_id).delete()
    AccountingRun.objects.filter(id=run_id).update(status=AccountingRun.QUEUED, attempt=0)
    real = services.account_parcels
    order = []

    def slow_first(inputs, **callbacks):
        if not order:  # execution 1: while it computes, the sweep finds it silent and execution 2 takes over
            order.append(1)
            run = AccountingRun.objects.get(id=run_id)
            assert accounting_run_execute(run_id=run_id, take_over=run.attempt,
                                          seen_heartbeat=run.heartbeat_at.isoformat()).status == "succeeded"
        else:
            order.append(2)
        return real(inputs, **callbacks)

    monkeypatch.setattr(services, "account_parcels", slow_first)
    first = accounting_run_execute(run_id=run_id)
    assert order == [1, 2]
    assert (first.status, first.attempt) == ("succeeded", 2)
    assert ParcelResult.objects.filter(run_id=run_id).count() == 2


def test_a_running_run_beats_while_it_computes(bureau, setup, settings, monkeypatch,
                                               django_capture_on_commit_callbacks):
    settings.RUN_HEARTBEAT_S = 0
    beats = []
    real = services.account_parcels

    def watched(inputs, *, on_progress, on_parcel):
        def parcel_done(done, total):
            on_parcel(done, total)
            beats.append(AccountingRun.objects.values_list("heartbeat_at", flat=True).get())
        return real(inputs, on_progress=on_progress, on_parcel=parcel_done)

    monkeypatch.setattr(services, "account_parcels", watched)
    start_run(bureau, django_capture_on_commit_callbacks, **run_body(setup))
    run = AccountingRun.objects.get()
    assert len(beats) == 2 and run.started_at < beats[0] < beats[1] <= run.finished_at


def test_a_queued_run_whose_message_was_lost_is_sent_again(bureau, setup, settings,
                                                           django_capture_on_commit_callbacks):
    settings.RUN_STALE_AFTER_S = 60
    run_id = bureau.post("/api/runs/", run_body(setup), format="json").json()["id"]  # its on_commit never runs
    row = Outbox.objects.get()
    assert accounting_runs_requeue_stale() == []  # its row still waits for the broker
    Outbox.objects.filter(id=row.id).update(sent_at=timezone.now())  # sent, then lost with a broker's memory
    AccountingRun.objects.filter(id=run_id).update(created_at=timezone.now() - timedelta(minutes=5))
    assert accounting_runs_requeue_stale() == []  # sent a moment ago: it may be waiting behind other runs
    Outbox.objects.filter(id=row.id).update(sent_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert accounting_runs_requeue_stale() == [run_id]
    assert AccountingRun.objects.get(id=run_id).status == "succeeded"
    assert Outbox.objects.count() == 2


# --- a real worker killed whole mid-run (PostgreSQL, Redis, the worker of .ci/run) ---------------------------------

def _worker(queue: str, log_path) -> subprocess.Popen:
    """A Celery worker of our own, on the test database, consuming only `queue` (one process, no pool child)."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ, DATABASE_URL=os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" +
               connection.settings_dict["NAME"], MEDIA_ROOT=str(settings.MEDIA_ROOT))
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                             "-Q", queue, "--loglevel", "INFO", "--logfile", str(log_path), "-n", f"{queue}@%h"],
                            env=env, start_new_session=True)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_is_killed_whole_finishes_after_the_sweep(api_user, tmp_path, settings):
    """SIGKILL to a worker process in the middle of a run: the run stays `running` and falls silent; the sweep
    queues it again, another worker (the suite's) takes it over, and its results are written once."""
    import numpy as np
    from rasterio.transform import Affine

    from accounting.models import MethodVersion
    from geo.models import Parcel, Raster
    from tests.accounting.test_runs import POOLS
    from tests.geo.helpers import write_tif

    _, client = api_user("bureau", county="510727")
    classes = np.full((4000, 4000), 4, np.uint8)  # 1.6 × 10^7 pixels: a few seconds of work
    classes[:, :2000] = 2
    path = write_tif(tmp_path / "big.tif", classes, crs="EPSG:32648",
                     transform=Affine(10, 0, 452_000, 0, -10, 3_586_000))
    with open(path, "rb") as handle:
        raster_id = client.post("/api/rasters/", {"file": handle, "epoch": 2020, "legend": "clcd"},
                                format="multipart").json()["id"]
    features = [parcel_feature(f"P-{i}", 452_005 + i * 1000, 3_546_005, 452_995 + i * 1000, 3_585_995)
                for i in range(39)]
    assert client.post("/api/parcels/", {"type": "FeatureCollection", "features": features},
                       format="json").status_code == 201
    method = MethodVersion.objects.get(id=client.post("/api/methods/", {"kind": "pool_table", "parameters": {
        "pools": POOLS}}, format="json").json()["id"])
    # The run row as the service writes it, but its task goes to our worker's queue alone.
    raster = Raster.objects.get(id=raster_id)
    run = AccountingRun.objects.create(method_version=method, raster=raster, county_code="510727",
                                       input_raster_sha256=[raster.sha256],
                                       normalised_raster_sha256=[raster.normalised_sha256],
                                       method_sha256=method.parameters_sha256, parcels_total=39)
    run.parcels.set(Parcel.objects.all())
    queue = f"tanhui-kill-{os.getpid()}"
    worker = _worker(queue, tmp_path / "worker.log")
    try:
        from config.celery import app

        app.send_task("accounting.run_execute", args=[run.id], queue=queue, ignore_result=True)
        for _ in range(600):
            run.refresh_from_db()
            if run.status != AccountingRun.QUEUED:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the run never got going: {run.status} ({(tmp_path / 'worker.log').read_text()[-2000:]})")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, as the OOM killer or a lost machine does
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    run.refresh_from_db()
    assert (run.status, run.attempt, ParcelResult.objects.filter(run=run).count()) == ("running", 1, 0)
    settings.RUN_STALE_AFTER_S = 1
    time.sleep(1.5)
    assert accounting_runs_requeue_stale() == [run.id]  # its outbox row is published to the suite's worker
    for _ in range(600):
        run.refresh_from_db()
        if run.status in (AccountingRun.SUCCEEDED, AccountingRun.FAILED):
            break
        time.sleep(0.2)
    assert (run.status, run.attempt) == ("succeeded", 2), run.failure_reason
    assert ParcelResult.objects.filter(run=run).count() == 39
