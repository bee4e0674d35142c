"""Errors raised by the carbon methods. HTTP-free: the API layer maps them to problem+json in one place.

Every message says what was expected and what came, with the numbers.
"""

from __future__ import annotations


def gettext_noop(message: str) -> str:
    """Mark `message` for translation (makemessages finds it by this name) without importing Django."""
    return message


class MethodError(ValueError):
    """Base class for everything the carbon methods refuse."""

    http_status = 422
    problem_slug = "method-cannot-apply"
    problem_title = gettext_noop("Method cannot be applied")


class MethodParameterError(MethodError):
    """Parameters that do not match the method's spec. `problems` maps each bad parameter path to what is wrong."""

    http_status = 422
    problem_slug = "invalid-method-parameters"
    problem_title = gettext_noop("Invalid method parameters")

    def __init__(self, kind: str, problems: dict[str, str]):
        self.kind = kind
        self.problems = dict(problems)
        listed = "; ".join(f"{path}: {why}" for path, why in sorted(self.problems.items()))
        super().__init__(f"invalid parameters for method {kind!r}: {listed}")


class PoolTableError(MethodError):
    """A malformed carbon pool table. `row` is the 1-based data row (header = row 0), `column` the header name."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        self.row = row
        self.column = column
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = f"carbon pool table, {', '.join(where)}" if where else "carbon pool table"
        super().__init__(f"{prefix}: {message}")


class MissingClassError(MethodError):
    """Land-cover classes present in a parcel (area > 0) that the method has no values for."""

    def __init__(self, codes, *, where: str):
        self.codes = tuple(sorted(codes))
        super().__init__(
            f"land-cover classes {list(self.codes)} have area in the parcel but are missing from {where}; "
            "add them (a class with no carbon needs explicit zeros)"
        )


class MissingParameterError(MethodError):
    """IPCC (or the shipped tables) give no value for a parameter the calculation needs: the caller must supply it."""

    def __init__(self, parameter: str, reason: str):
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"{reason}; supply {parameter!r} in the method parameters")


class InconsistentInputError(MethodError):
    """Inputs that contradict each other, e.g. a transition matrix whose row sums are not the baseline areas."""
