"""Errors raised by the carbon methods. HTTP-free: the API layer maps them to problem+json in one place.

Every message says what was expected and what came, with the numbers. Messages are templates with named values
(`geo.errors.TranslatableError`), so that the API and the pages show them in their user's language.
"""

from __future__ import annotations

from geo.errors import TranslatableError, TranslatableMessage, gettext_noop, joined_message

__all__ = ["InconsistentInputError", "MethodError", "MethodParameterError", "MissingClassError",
           "MissingParameterError", "PoolTableError", "TranslatableMessage", "ValuationTermsError", "gettext_noop"]


def _message(text: str, params: dict) -> TranslatableMessage:
    return text if isinstance(text, TranslatableMessage) and not params else TranslatableMessage(text, **params)


class MethodError(TranslatableError, ValueError):
    """Base class for everything the carbon methods refuse."""

    http_status = 422
    problem_slug = "method-cannot-apply"
    problem_title = gettext_noop("Method cannot be applied")


class MethodParameterError(MethodError):
    """Parameters that do not match the method's spec. `problems` maps each bad parameter path to what is wrong
    (a TranslatableMessage, so the API lists each in the caller's language)."""

    http_status = 422
    problem_slug = "invalid-method-parameters"
    problem_title = gettext_noop("Invalid method parameters")

    def __init__(self, kind: str, problems: dict[str, str]):
        self.kind = kind
        self.problems = {path: _message(why, {}) for path, why in problems.items()}
        listed = joined_message(gettext_noop("; "), [
            TranslatableMessage(gettext_noop("%(path)s: %(why)s"), path=path, why=why)
            for path, why in sorted(self.problems.items())])
        super().__init__(gettext_noop("invalid parameters for method %(kind)s: %(listed)s"), kind=repr(kind),
                         listed=listed, extensions={})


class PoolTableError(MethodError):
    """A malformed carbon pool table. `row` is the 1-based data row (header = row 0), `column` the header name.

        raise PoolTableError(gettext_noop("expected a number (t C/ha), got %(got)s"), got=repr(text), row=3,
                             column="c_soil")
    """

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None, **params):
        self.row = row
        self.column = column
        where = []
        if row is not None:
            where.append(TranslatableMessage(gettext_noop("row %(row)s"), row=row))
        if column is not None:
            where.append(TranslatableMessage(gettext_noop("column %(column)s"), column=repr(column)))
        extensions = {key: value for key, value in (("row", row), ("column", column)) if value is not None}
        if where:
            super().__init__(gettext_noop("carbon pool table, %(where)s: %(message)s"),
                             where=joined_message(gettext_noop(", "), where), message=_message(message, params),
                             extensions=extensions)
        else:
            super().__init__(gettext_noop("carbon pool table: %(message)s"), message=_message(message, params),
                             extensions=extensions)


class MissingClassError(MethodError):
    """Land-cover classes present in a parcel (area > 0) that the method has no values for. `where` names what
    lacks them, marked for translation: `where=gettext_noop("the carbon pool table")`."""

    def __init__(self, codes, *, where: str):
        self.codes = tuple(sorted(codes))
        super().__init__(
            gettext_noop("land-cover classes %(codes)s have area in the parcel but are missing from %(where)s; "
                         "add them (a class with no carbon needs explicit zeros)"),
            codes=str(list(self.codes)), where=_message(where, {}), extensions={"codes": list(self.codes)})


class MissingParameterError(MethodError):
    """IPCC (or the shipped tables) give no value for a parameter the calculation needs: the caller must supply it.

        raise MissingParameterError("root_to_shoot", gettext_noop("Table 4.4 has no ecological zone %(zone)s"),
                                    zone=repr(zone))
    """

    def __init__(self, parameter: str, reason: str, /, **params):
        self.parameter = parameter
        self.reason = _message(reason, params)
        super().__init__(gettext_noop("%(reason)s; supply %(parameter)s in the method parameters"),
                         reason=self.reason, parameter=repr(parameter), extensions={"parameter": parameter})


class InconsistentInputError(MethodError):
    """Inputs that contradict each other, e.g. a transition matrix whose row sums are not the baseline areas."""


class ValuationTermsError(MethodError):
    """Valuation terms that cannot price anything: a currency that is no ISO 4217 code, a negative price, a rate at
    or below -100 %. `field` names the term."""
