"""InVEST carbon pool table: four carbon densities per land-cover class, t C/ha.

The table is read as InVEST reads it (InVEST Carbon Storage and Sequestration, "carbon_pools_path"): columns
`lucode`, `c_above`, `c_below`, `c_soil`, `c_dead` and the optional `LULC_Name` (kept in the parameters, so it
is hashed), headers in any case, other columns ignored,
so an InVEST user brings the table unchanged. Stock of a class = density × area:
    t C/ha × ha = t C
(InVEST itself works per pixel: t C/ha × pixel area m² × 1 ha/10 000 m²; summing class areas first gives the
same totals.)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from .errors import MissingClassError, PoolTableError, gettext_noop
from .terms import Factor, StockTerm
from .units import POOLS

REQUIRED_COLUMNS = ("lucode", *POOLS)


@dataclass(frozen=True, slots=True)
class PoolDensity:
    """Carbon densities of one class, t C/ha."""

    lucode: int
    c_above_t_c_per_ha: float
    c_below_t_c_per_ha: float
    c_soil_t_c_per_ha: float
    c_dead_t_c_per_ha: float
    lulc_name: str | None = None  # InVEST's LULC_Name: for people only, but part of what was published

    def density_t_c_per_ha(self, pool: str) -> float:
        return getattr(self, f"{pool}_t_c_per_ha")


@dataclass(frozen=True, slots=True)
class PoolTable:
    """Rows sorted by lucode; lucodes unique."""

    rows: tuple[PoolDensity, ...]

    def by_lucode(self) -> dict[int, PoolDensity]:
        return {row.lucode: row for row in self.rows}

    def as_parameters(self) -> list[dict[str, float | int]]:
        """The rows as method parameters (`{"pools": [...]}`), so the parameter hash covers every number."""
        return [
            {"lucode": r.lucode, "c_above": r.c_above_t_c_per_ha, "c_below": r.c_below_t_c_per_ha,
             "c_soil": r.c_soil_t_c_per_ha, "c_dead": r.c_dead_t_c_per_ha,
             **({"lulc_name": r.lulc_name} if r.lulc_name is not None else {})}
            for r in self.rows
        ]


def _number(text: str, *, row: int, column: str) -> float:
    stripped = text.strip() if isinstance(text, str) else text
    if stripped in ("", None):
        raise PoolTableError(gettext_noop("empty cell; expected a density in t C/ha (use 0 for none)"), row=row,
                             column=column)
    try:
        value = float(stripped)
    except (TypeError, ValueError):
        raise PoolTableError(gettext_noop("expected a number (t C/ha), got %(got)s"), got=repr(text), row=row,
                             column=column) from None
    if not math.isfinite(value):
        raise PoolTableError(gettext_noop("expected a finite number (t C/ha), got %(got)s"), got=repr(text), row=row,
                             column=column)
    if value < 0:
        raise PoolTableError(gettext_noop("negative density %(value)s t C/ha; densities must be >= 0"), value=value,
                             row=row, column=column)
    return value


def _lucode(text, *, row: int) -> int:
    if isinstance(text, bool):
        raise PoolTableError(gettext_noop("expected an integer land-cover code, got %(got)s"), got=repr(text), row=row,
                             column="lucode")
    if isinstance(text, int):
        return text
    stripped = text.strip() if isinstance(text, str) else text
    try:
        return int(stripped)
    except (TypeError, ValueError):
        raise PoolTableError(gettext_noop("expected an integer land-cover code, got %(got)s"), got=repr(text), row=row,
                             column="lucode") from None


def pool_table_from_rows(rows: Iterable[Mapping[str, object]]) -> PoolTable:
    """Build a table from mappings with keys lucode, c_above, c_below, c_soil, c_dead and optionally lulc_name (any
    case; others ignored), so that an InVEST table gives the same parameters whether it comes as CSV or JSON.

    Rows are numbered from 1 in errors (the first data row is row 1). Raises PoolTableError on a missing column,
    an empty or non-numeric cell, a negative density or a repeated lucode, naming the row and column.
    """
    densities: dict[int, PoolDensity] = {}
    first_row_of: dict[int, int] = {}
    count = 0
    for number, raw in enumerate(rows, start=1):
        count += 1
        row = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
        for column in REQUIRED_COLUMNS:
            if column not in row:
                raise PoolTableError(gettext_noop("missing; expected columns %(columns)s"),
                                     columns=str(list(REQUIRED_COLUMNS)), row=number, column=column)
        lucode = _lucode(row["lucode"], row=number)
        if lucode in densities:
            raise PoolTableError(
                gettext_noop("lucode %(lucode)s repeats row %(first_row)s; each class needs exactly one row"),
                lucode=lucode, first_row=first_row_of[lucode], row=number, column="lucode",
            )
        values = {pool: _number(row[pool], row=number, column=pool) for pool in POOLS}
        name = row.get("lulc_name")
        name = name.strip() if isinstance(name, str) and name.strip() else None
        densities[lucode] = PoolDensity(lucode, *(values[pool] for pool in POOLS), lulc_name=name)
        first_row_of[lucode] = number
    if count == 0:
        raise PoolTableError(gettext_noop("no rows; expected one row per land-cover class"))
    return PoolTable(tuple(densities[k] for k in sorted(densities)))


def pool_table_read(source: str | TextIO) -> PoolTable:
    """Parse an InVEST carbon pool table from CSV text or an open text file object (the caller opens files).

    Headers are matched case-insensitively after stripping blanks and a UTF-8 BOM; columns other than lucode,
    c_above, c_below, c_soil and c_dead are ignored. A header without one of those columns is refused before
    any row is read.
    """
    text = source if isinstance(source, str) else source.read()
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing:
        raise PoolTableError(
            gettext_noop("header lacks %(missing)s; expected columns %(columns)s (any case), got %(got)s"),
            missing=str(missing), columns=str(list(REQUIRED_COLUMNS)), got=str(reader.fieldnames), row=0,
        )
    if len(set(headers)) != len(headers):
        repeated = sorted({h for h in headers if headers.count(h) > 1})
        raise PoolTableError(gettext_noop("header repeats %(repeated)s (compared in lower case)"),
                             repeated=str(repeated), row=0)
    rows = []
    for number, raw in enumerate(reader, start=1):
        if None in raw:
            raise PoolTableError(gettext_noop("more cells than the %(count)s header columns"), count=len(headers),
                                 row=number)
        rows.append(raw)
    return pool_table_from_rows(rows)


def check_areas(area_ha_by_class: Mapping[int, float], *, name: str = "area_ha_by_class") -> dict[int, float]:
    """Areas as {int lucode: float ha}; refuses negative or non-finite areas."""
    out = {}
    for code, area in area_ha_by_class.items():
        area = float(area)
        if not math.isfinite(area) or area < 0:
            raise ValueError(f"{name}[{code}] = {area} ha; areas must be finite and >= 0")
        out[int(code)] = area
    return out


def pool_table_terms(
    table: PoolTable,
    area_ha_by_class: Mapping[int, float],
    *,
    uncertainty_pct: Mapping[str, float] | None = None,
) -> tuple[StockTerm, ...]:
    """One term per (class with area > 0, pool): area_ha × density_t_c_per_ha.

    `uncertainty_pct` maps "area", "c_above", "c_below", "c_soil", "c_dead" to percent half-widths of the 95 %
    interval (missing keys: 0). Raises MissingClassError naming every class with area but no row.
    """
    areas = check_areas(area_ha_by_class)
    u = dict(uncertainty_pct or {})
    rows = table.by_lucode()
    missing = [code for code, area in areas.items() if area > 0 and code not in rows]
    if missing:
        raise MissingClassError(missing, where=gettext_noop("the carbon pool table"))
    terms = []
    for code in sorted(areas):
        area = areas[code]
        if area <= 0:
            continue
        area_factor = Factor("area_ha", area, "ha", u.get("area", 0.0), f"area_ha[{code}]")
        for pool in POOLS:
            density = Factor(f"{pool}_t_c_per_ha", rows[code].density_t_c_per_ha(pool), "t C/ha",
                             u.get(pool, 0.0), f"{pool}[{code}]")
            terms.append(StockTerm(code, pool, (area_factor, density)))
    return tuple(terms)


def pool_table_stock(table: PoolTable, area_ha_by_class: Mapping[int, float]) -> dict[str, float]:
    """Stock per pool, t C: Σ over classes of area_ha × density (t C/ha). Raises MissingClassError as above."""
    out = dict.fromkeys(POOLS, 0.0)
    for term in pool_table_terms(table, area_ha_by_class):
        out[term.pool] += term.stock_t_c
    return out
