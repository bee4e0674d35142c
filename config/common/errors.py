"""Errors that belong to no single app. HTTP-free, imported by the apps; config/problems.py maps them."""
from django.utils.translation import gettext_noop


class UploadTooLarge(Exception):
    """The request body is larger than the configured limit. Its message is a template and values (as in a
    `TranslatableError`), shown in the caller's language."""

    http_status = 413
    problem_slug = "upload-too-large"
    problem_title = gettext_noop("Upload too large")

    def __init__(self, size_bytes: int, limit_bytes: int):
        self.message_template = gettext_noop("upload is %(size_bytes)s bytes; the limit is %(limit_bytes)s bytes")
        self.message_params = {"size_bytes": size_bytes, "limit_bytes": limit_bytes}
        super().__init__(self.message_template % self.message_params)
        self.extensions = dict(self.message_params)
