"""A task submitted through the real broker runs in the separate worker process that .ci/run starts."""

import os

import pytest

from config.celery import ping


@pytest.mark.services
def test_task_runs_in_separate_worker_and_result_is_read_back():
    result = ping.delay("hello from the test")
    answer = result.get(timeout=60)
    assert answer["payload"] == "hello from the test"
    assert answer["worker_pid"] != os.getpid()


def test_eager_mode_without_broker_runs_in_process(settings):
    if settings.CELERY_BROKER_URL:
        pytest.skip("a broker is configured in this pass")
    answer = ping.delay("eager").get()
    assert answer == {"payload": "eager", "worker_pid": os.getpid()}
