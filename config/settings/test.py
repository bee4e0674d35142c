"""Test settings: the base settings with fast password hashing and a throwaway var/ folder per run."""

import os
import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# A shared MEDIA_ROOT from the environment lets a separate Celery worker read what the tests wrote.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="tanhui-test-media-"))
# Without a broker, tasks run at once in the caller (Celery's eager mode, countdowns ignored) rather than on the
# in-process runner's threads, and nothing is swept at start; tests of the runner start their own.
INPROCESS_TASKS = "inline"
OUTBOX_SEND_AT_START = False
