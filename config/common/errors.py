"""Errors that belong to no single app. HTTP-free, imported by the apps; config/problems.py maps them."""
from django.utils.translation import gettext_noop


class UploadTooLarge(Exception):
    """The request body is larger than the configured limit."""

    http_status = 413
    problem_slug = "upload-too-large"
    problem_title = gettext_noop("Upload too large")

    def __init__(self, size_bytes: int, limit_bytes: int):
        super().__init__(f"upload is {size_bytes} bytes; the limit is {limit_bytes} bytes")
        self.extensions = {"size_bytes": size_bytes, "limit_bytes": limit_bytes}
