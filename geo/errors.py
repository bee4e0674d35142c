"""Errors the geo app raises where it understands the fault. HTTP-free: config/problems.py maps them.

Pure (no Django): `TranslatableMessage` and `TranslatableError` are a copy of those in `ledger.core.errors`, since
geo imports no ledger; accounting uses these.
"""

import contextlib

__all__ = ["CountyScopeError", "DuplicateParcelError", "LegendError", "ParcelError", "RasterConflictError",
           "RasterError", "RasterTooLargeError", "RasterTooManyPixelsError", "TranslatableError", "TranslatableMessage",
           "ZonalError", "gettext_noop", "joined_message"]


def gettext_noop(message: str) -> str:
    """Mark `message` for translation (makemessages finds it by this name) without importing Django."""
    return message


class TranslatableMessage(str):
    """An English sentence that keeps its template and named values, so that a door can show it in its user's
    language (`config.common.problems.translated`); everywhere else it is the plain English string:

        detail = TranslatableMessage(gettext_noop("geometry must be a Polygon; got %(got)s"), got="'Point'")
        detail == "geometry must be a Polygon; got 'Point'"

    A value may itself be a TranslatableMessage (translated first, then filled in). A template without values is
    shown as it is, so it must not escape '%' as '%%'.
    """

    message_template: str
    message_params: dict

    def __new__(cls, message_template: str = "", /, **params):
        text = message_template
        if params:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                text = message_template % params
        message = super().__new__(cls, text)
        message.message_template, message.message_params = message_template, params
        return message


def joined_message(separator: str, messages) -> TranslatableMessage:
    """`messages` joined by `separator` (marked for translation too: `gettext_noop("; ")`) as one
    TranslatableMessage; each part and the separator are translated when it is shown."""
    params = {f"part{index}": message for index, message in enumerate(messages)}
    template = separator.replace("%", "%%").join(f"%({name})s" for name in params)
    joined = TranslatableMessage(template, **params)
    joined.message_separator = separator
    return joined


class TranslatableError(Exception):
    """An error whose message is a template with named values, so that each door can show it in its user's
    language (the API by Accept-Language, the pages by the chosen language):

        raise ParcelError(gettext_noop("parcel %(code)s is outside county %(county)s"), code=code, ...)

    `str(exc)` is the English sentence; `message_template` and `message_params` let `config.common.problems`
    translate it; the params are also the problem's named extension members, unless `extensions` names others
    (when a value is only there to be shown, e.g. a list already written out). `field` names the request field at
    fault, when one is (a page shows the message beside that field; the API names it in `errors`); a class may
    name it once for all its errors (`field = "uscc"`).
    """

    extensions: dict = {}
    field: str | None = None

    def __init__(self, message_template: str = "", *, field: str | None = None, extensions: dict | None = None,
                 **params):
        self.message_template, self.message_params = message_template, params
        super().__init__(TranslatableMessage(message_template, **params))
        self.extensions = params if extensions is None else extensions
        if field is not None:
            self.field = field

    @property
    def message(self) -> TranslatableMessage:
        """The message as a TranslatableMessage, to become a value of another message."""
        return TranslatableMessage(self.message_template, **self.message_params)


class LegendError(TranslatableError, ValueError):
    """A legend that cannot be used: unknown name, malformed file, or a class without an IPCC category."""

    http_status = 422
    problem_slug = "invalid-legend"
    problem_title = gettext_noop("Invalid legend")


class RasterError(TranslatableError, ValueError):
    """An upload that is not a usable land-cover raster; the message names the fault."""

    http_status = 422
    problem_slug = "invalid-raster"
    problem_title = gettext_noop("Invalid raster")


class RasterTooLargeError(RasterError):
    """A raster (or a request body) larger than MAX_RASTER_BYTES."""

    http_status = 413
    problem_slug = "raster-too-large"
    problem_title = gettext_noop("Raster too large")

    def __init__(self, size_bytes: int, limit_bytes: int):
        super().__init__(gettext_noop("raster is %(size_bytes)s bytes; the limit (MAX_RASTER_BYTES) is "
                                      "%(limit_bytes)s bytes"), size_bytes=size_bytes, limit_bytes=limit_bytes)


class RasterTooManyPixelsError(RasterTooLargeError):
    """A raster whose header declares more pixels (width x height x bands) than MAX_RASTER_PIXELS: refused before
    any pixel is read, however small the file (a compressed or sparse file can declare 10^10 pixels in 77 KB). The
    same problem type as a file too large in bytes."""

    def __init__(self, *, width: int, height: int, band_count: int, limit_pixels: int):
        pixels = width * height * band_count
        RasterError.__init__(self, gettext_noop("the raster declares %(width)s x %(height)s pixels in %(band_count)s "
                                                "band(s), %(pixels)s pixels in all; the limit (MAX_RASTER_PIXELS) is "
                                                "%(limit_pixels)s"), width=width, height=height,
                             band_count=band_count, pixels=pixels, limit_pixels=limit_pixels)


class RasterConflictError(RasterError):
    """The same bytes are already registered with another epoch or legend."""

    http_status = 409
    problem_slug = "raster-conflict"
    problem_title = gettext_noop("Raster already registered differently")


def parcel_problem(index: int | None, code: str | None, detail: str, /, *, pointer: str | None = None,
                   parameter: str | None = None, **params) -> dict:
    """One bad feature of a parcel file: {"pointer", "index", "code", "detail"}, the detail a translatable `detail`
    template filled with `params`. `pointer` is the JSON pointer (RFC 6901, as a URI fragment) to what is wrong in
    the file, e.g. "#/features/3/properties/code"; by default the feature ("#/features/3"), or the whole file ("#")
    when `index` is None. A fault of a request parameter instead (`crs`) names it as {"parameter": ...}."""
    where = {"parameter": parameter} if parameter is not None else {
        "pointer": pointer if pointer is not None else "#" if index is None else f"#/features/{index}"}
    return {**where, "index": index, "code": code, "detail": TranslatableMessage(detail, **params)}


class ParcelError(TranslatableError, ValueError):
    """One or more features of a parcel file are unusable. `problems` lists each: {"pointer", "index", "code",
    "detail"}
    (`parcel_problem`; each detail a TranslatableMessage, so the API lists them in the caller's language)."""

    http_status = 422
    problem_slug = "invalid-parcels"
    problem_title = gettext_noop("Invalid parcels")

    def __init__(self, problems: list[dict], *, field: str | None = None):
        self.problems = problems
        shown = joined_message(gettext_noop("; "), [
            TranslatableMessage(gettext_noop("feature %(index)s: %(detail)s"), index=p["index"], detail=p["detail"])
            if p["index"] is not None else TranslatableMessage(gettext_noop("feature None: %(detail)s"),
                                                                detail=p["detail"])  # the file as a whole
            for p in problems[:10]])
        more = (TranslatableMessage(gettext_noop(" (and %(count)s more)"), count=len(problems) - 10)
                if len(problems) > 10 else "")
        super().__init__(gettext_noop("%(count)s bad feature(s), nothing imported: %(shown)s%(more)s"),
                         count=len(problems), shown=shown, more=more, extensions={"errors": problems}, field=field)


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


__all__ += ["RasterFileChangedError"]
