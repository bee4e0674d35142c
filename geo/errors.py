"""Errors the geo app raises where it understands the fault. HTTP-free: config/problems.py maps them."""

import contextlib

from geo.legends import LegendError, gettext_noop

__all__ = ["CountyScopeError", "DuplicateParcelError", "LegendError", "ParcelError", "RasterConflictError",
           "RasterError", "RasterTooLargeError", "TranslatableError"]


class TranslatableError(Exception):
    """An error whose message is a template with named values, so that each door can show it in its user's
    language (the API by Accept-Language, the pages by the chosen language):

        raise ParcelError(gettext_noop("parcel %(code)s is outside county %(county)s"), code=code, ...)

    `str(exc)` is the English sentence; `message_template` and `message_params` let `config.common.problems`
    translate it; the params are also the problem's named extension members. `field` names the request field at
    fault, when one is (a page shows the message beside that field; the API names it in `errors`).
    """

    extensions: dict = {}
    field: str | None = None

    def __init__(self, message_template: str, *, field: str | None = None, **params):
        self.message_template, self.message_params = message_template, params
        message = message_template
        if params:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                message = message_template % params
        super().__init__(message)
        self.extensions = params
        self.field = field


class RasterError(ValueError):
    """An upload that is not a usable land-cover raster; the message names the fault."""

    http_status = 422
    problem_slug = "invalid-raster"
    problem_title = gettext_noop("Invalid raster")

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


class RasterTooLargeError(RasterError):

    http_status = 413
    problem_slug = "raster-too-large"
    problem_title = gettext_noop("Raster too large")
    def __init__(self, size_bytes: int, limit_bytes: int):
        super().__init__(f"raster is {size_bytes} bytes; the limit (MAX_RASTER_BYTES) is {limit_bytes} bytes",
                         size_bytes=size_bytes, limit_bytes=limit_bytes)


class RasterConflictError(RasterError):
    """The same bytes are already registered with another epoch or legend."""

    http_status = 409
    problem_slug = "raster-conflict"
    problem_title = gettext_noop("Raster already registered differently")


class ParcelError(ValueError):
    """One or more features of a parcel file are unusable. `problems` lists each: {"index", "code", "detail"}."""

    http_status = 422
    problem_slug = "invalid-parcels"
    problem_title = gettext_noop("Invalid parcels")

    def __init__(self, problems: list[dict]):
        self.problems = problems
        shown = "; ".join(f"feature {p['index']}: {p['detail']}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} bad feature(s), nothing imported: {shown}{more}")
        self.extensions = {"errors": problems}


class DuplicateParcelError(ParcelError):
    """A parcel code already used in its county (or twice in one file)."""

    http_status = 409
    problem_slug = "duplicate-parcel"
    problem_title = gettext_noop("Duplicate parcel code")


class CountyScopeError(TranslatableError):
    """A bureau user acting outside its own county."""

    http_status = 403
    problem_slug = "outside-your-county"
    problem_title = gettext_noop("Outside your county")


class ZonalError(ValueError):
    """Inputs the zonal engine (geo/zonal.py) cannot use: the message names what was expected and what came."""


class RasterFileChangedError(ZonalError):
    """A stored raster file whose bytes no longer have the sha256 recorded for them: it was changed or replaced
    after it was stored, and nothing is read from it."""

    def __init__(self, name: str, *, recorded_sha256: str, found_sha256: str):
        super().__init__(f"raster file {name} has sha256 {found_sha256}, want {recorded_sha256} (recorded when it "
                         "was stored): the file has changed since, so nothing was read from it")
        self.name, self.recorded_sha256, self.found_sha256 = name, recorded_sha256, found_sha256


__all__ += ["RasterFileChangedError", "ZonalError"]
