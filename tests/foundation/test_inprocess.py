"""The in-process runner (config.celery): without a broker, a published task runs on a thread of its own at its due
time, never in the caller, and the runner plays Celery beat's part."""

import threading
import time

import pytest

import config.celery
from config.celery import InProcessRunner, app

CALLS: list[tuple[str, float, str]] = []


@app.task(name="tests.inprocess.record")
def record(label: str) -> None:
    CALLS.append((label, time.monotonic(), threading.current_thread().name))
    if label == "boom":
        raise RuntimeError("boom")
    if label == "slow":
        time.sleep(0.5)


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; calls so far: {CALLS}")
        time.sleep(0.01)


@pytest.fixture
def runner():
    CALLS.clear()
    runner = InProcessRunner(app, threads=2, beat=False)
    yield runner
    runner.stop()


def test_a_task_runs_on_a_runner_thread_at_its_due_time(runner):
    started = time.monotonic()
    runner.submit("tests.inprocess.record", ("later",), countdown=0.3)
    runner.submit("tests.inprocess.record", ("now",))
    assert time.monotonic() - started < 0.1  # the caller never waits for a task
    wait_for(lambda: len(CALLS) == 2)
    (first, _, thread), (second, at, _) = CALLS
    assert (first, second) == ("now", "later")
    assert at - started >= 0.3
    assert thread.startswith("tanhui-tasks-") and thread != threading.current_thread().name


def test_a_failing_task_is_logged_and_the_runner_goes_on(runner, caplog):
    runner.submit("tests.inprocess.record", ("boom",))
    runner.submit("tests.inprocess.record", ("after",), countdown=0.05)
    wait_for(lambda: [label for label, *_ in CALLS] == ["boom", "after"])
    assert "in-process task tests.inprocess.record('boom',) failed" in caplog.text


def test_without_a_broker_a_published_task_goes_to_the_runner(runner, settings, monkeypatch):
    settings.INPROCESS_TASKS = "background"  # the embedded default; the tests' own mode is "inline"
    monkeypatch.setattr(config.celery, "in_process", runner)
    started = time.monotonic()
    result = record.apply_async(args=["published"], countdown=0.2)
    assert CALLS == [] and result.id
    wait_for(lambda: len(CALLS) == 1)
    assert CALLS[0][1] - started >= 0.2 and CALLS[0][2].startswith("tanhui-tasks-")


def test_inline_mode_runs_a_task_in_the_caller_at_once(settings):
    CALLS.clear()
    assert settings.INPROCESS_TASKS == "inline"
    record.apply_async(args=["inline"], countdown=60)
    assert [(label, thread) for label, _, thread in CALLS] == [("inline", threading.current_thread().name)]


def test_the_runner_plays_beat_at_start_and_on_its_intervals(monkeypatch):
    CALLS.clear()
    monkeypatch.setitem(app.conf, "beat_schedule", {
        "often": {"task": "tests.inprocess.record", "schedule": 0.2, "args": ("often",)},
        "slow": {"task": "tests.inprocess.record", "schedule": 0.05, "args": ("slow",)},
    })
    runner = InProcessRunner(app, threads=2)
    started = time.monotonic()
    runner.start()
    try:
        time.sleep(0.9)
    finally:
        runner.stop()
    often = [at - started for label, at, _ in CALLS if label == "often"]
    slow = [label for label, *_ in CALLS if label == "slow"]
    assert often[0] < 0.15 and 3 <= len(often) <= 6  # at start, then every 0.2 s
    # "slow" takes 0.5 s and is due every 0.05 s: never queued again while its last run is not done
    assert 1 <= len(slow) <= 2
