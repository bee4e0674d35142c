"""Errors that belong to no single app. HTTP-free, imported by the apps; config/problems.py maps them."""
from django.utils.translation import gettext_noop


class UploadTooLarge(Exception):
    """The request body is larger than the configured limit. Its message is a template and values (as in a
    `TranslatableError`), shown in the caller's language."""

    http_status = 413
    problem_slug = "upload-too-large"
    problem_title = gettext_noop("Upload too large")

    def __init__(self, size_bytes: int, limit_bytes: int, *, setting_name: str | None = None):
        if setting_name is None:
            self.message_template = gettext_noop("upload is %(size_bytes)s bytes; the limit is %(limit_bytes)s bytes")
            self.message_params = {"size_bytes": size_bytes, "limit_bytes": limit_bytes}
        else:
            self.message_template = gettext_noop("the request body is %(size_bytes)s bytes; the limit here "
                                                 "(%(limit_setting)s) is %(limit_bytes)s bytes")
            self.message_params = {"size_bytes": size_bytes, "limit_bytes": limit_bytes,
                                   "limit_setting": setting_name}
        super().__init__(self.message_template % self.message_params)
        self.extensions = dict(self.message_params)


class InputError(ValueError):
    """A request the service refuses before any app sees it; the message is a template and values (as in a
    `TranslatableError`), shown in the caller's language, and the values are the problem's members."""

    def __init__(self, message_template: str, **params):
        self.message_template, self.message_params = message_template, params
        super().__init__(message_template % params if params else message_template)
        self.extensions = dict(params)


class JSONInputError(InputError):
    """A JSON body or file that is not JSON the service accepts (config.common.jsonlimits): not UTF-8, nested too
    deep, a number beyond a double, NaN, a lone surrogate."""

    http_status = 400
    problem_slug = "invalid-json"
    problem_title = gettext_noop("Invalid JSON")

