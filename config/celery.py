"""The Celery app. Start workers with `celery -A config worker` and the scheduler with `celery -A config beat`."""

import os

from celery import Celery

from config.settings import settings_module_select

settings_module_select()  # DJANGO_SETTINGS_MODULE, else TANHUI_ENV (production or development)

app = Celery("tanhui")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="tanhui.ping")
def ping(payload: str) -> dict:
    """Echo `payload` with the worker's process id: shows that a broker round trip really reached a worker."""
    return {"payload": payload, "worker_pid": os.getpid()}
