"""Test settings: the base settings with fast password hashing and a throwaway var/ folder per run."""

import os
import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# A shared MEDIA_ROOT from the environment lets a separate Celery worker read what the tests wrote.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="tanhui-test-media-"))
