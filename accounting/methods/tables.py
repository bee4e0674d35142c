"""The shipped IPCC default tables (accounting/data/*.json) and look-ups into them.

This is the package's only file I/O: it reads the JSON files that ship beside the code, once, and caches them.
Each look-up returns a `TableValue` that carries the value's source and its `unconfirmed` flag, and raises
`MissingParameterError` where the table has no value (never a silent fallback):
- a zone/continent the table does not cover, a range instead of a value (mountain systems), NA cells;
- a value marked unconfirmed (from memory, not yet checked against the IPCC PDF) unless the method's
  parameters set `allow_unconfirmed_defaults: true`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import MissingParameterError, gettext_noop

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

TABLE_FILES = {
    "forest_agb": "ipcc2006_v4_t4_7_forest_agb.json",
    "root_to_shoot": "ipcc2006_v4_t4_4_root_to_shoot.json",
    "carbon_fraction": "ipcc2006_v4_t4_3_carbon_fraction.json",
    "bcef": "ipcc2006_v4_t4_5_bcef.json",
    "grassland_biomass": "ipcc2006_v4_t6_4_grassland_biomass.json",
    "soc_ref": "ipcc2006_v4_t2_3_soc_ref.json",
    "grassland_soc_factors": "ipcc2006_v4_t6_2_grassland_soc_factors.json",
}


@dataclass(frozen=True, slots=True)
class TableValue:
    """A default taken from a shipped table. `origin` is a short citation, e.g. "IPCC 2006 Vol 4 Table 4.4 p. 4.49"."""

    value: float
    unit: str
    unconfirmed: bool
    origin: str
    wording: str | None = None


@cache
def load_table(name: str) -> dict[str, Any]:
    """The parsed JSON of one shipped table (see TABLE_FILES)."""
    with open(DATA_DIR / TABLE_FILES[name], encoding="utf-8") as fh:
        return json.load(fh)


def default_tables_sha256() -> str:
    """sha256 over the shipped table files (name and bytes, in name order). The method-parameter hash does not
    cover defaults read from these files, so a run records this beside the code version."""
    digest = hashlib.sha256()
    for name in sorted(TABLE_FILES.values()):
        data = (DATA_DIR / name).read_bytes()
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def _origin(source: dict[str, Any]) -> str:
    page = f" p. {source['page']}" + (" (page unconfirmed)" if source.get("page_unconfirmed") else "")
    return f"IPCC {source['edition']} Vol {source['volume']} Ch {source['chapter']} Table {source['table']}{page}"


def _accept(value: TableValue, parameter: str, allow_unconfirmed: bool) -> TableValue:
    if value.unconfirmed and not allow_unconfirmed:
        raise MissingParameterError(
            parameter,
            gettext_noop("the shipped default %(parameter)s = %(value)s (%(origin)s) is unconfirmed (from memory, not "
                         "yet checked against the IPCC PDF); either supply the value or set "
                         "allow_unconfirmed_defaults: true"),
            parameter=parameter, value=value.value, origin=value.origin,
        )
    return value


def _in_band(x: float, lo: float | None, lo_inclusive: bool, hi: float | None, hi_inclusive: bool) -> bool:
    if lo is not None and (x < lo or (x == lo and not lo_inclusive)):
        return False
    return not (hi is not None and (x > hi or (x == hi and not hi_inclusive)))


def forest_agb_t_dm_per_ha(
    ecological_zone: str, continent: str, stand_age_class: str | None, *, allow_unconfirmed: bool
) -> TableValue:
    """Above-ground biomass of natural forest, t d.m./ha (IPCC 2006 Vol 4 Table 4.7)."""
    rows = [r for r in load_table("forest_agb")["rows"] if r["ecological_zone"] == ecological_zone]
    if not rows:
        raise MissingParameterError("agb_t_dm_per_ha", gettext_noop("Table 4.7 has no ecological zone %(zone)s"),
                                    zone=repr(ecological_zone))
    aged = {r["stand_age_class"] for r in rows} - {None}
    if aged and stand_age_class not in aged:
        raise MissingParameterError(
            "stand_age_class",
            gettext_noop("Table 4.7 splits %(zone)s by stand age %(classes)s, got %(got)s"),
            zone=repr(ecological_zone), classes=str(sorted(aged)), got=repr(stand_age_class),
        )
    match = [r for r in rows if r["continent"] == continent and (not aged or r["stand_age_class"] == stand_age_class)]
    if not match:
        raise MissingParameterError(
            "agb_t_dm_per_ha", gettext_noop("Table 4.7 gives no value for %(zone)s in continent %(continent)s"),
            zone=repr(ecological_zone), continent=repr(continent),
        )
    row = match[0]
    if row["value"] is None:
        raise MissingParameterError(
            "agb_t_dm_per_ha",
            gettext_noop("Table 4.7 gives only a range %(range)s t d.m./ha for %(zone)s (%(column)s), not a Tier 1 "
                         "value"), range=str(row["range_t_dm_per_ha"]), zone=repr(ecological_zone),
            column=row["table_column"],
        )
    value = TableValue(float(row["value"]), "t d.m./ha", row["unconfirmed"], _origin(row["source"]))
    return _accept(value, "agb_t_dm_per_ha", allow_unconfirmed)


def root_to_shoot_ratio(
    ecological_zone: str, forest_type: str | None, agb_t_dm_per_ha: float, *, allow_unconfirmed: bool
) -> TableValue:
    """R, t root d.m. per t shoot d.m., chosen by zone, (temperate) forest type and AGB band (Table 4.4).

    Band edges follow the table's wording: '<a' excludes a, 'a–b' includes both ends, and where a two-band row
    ('<a' / '>a') leaves a itself in no band, a goes to the upper band. So: dry forests 20 → 0.28; moist
    deciduous / subtropical humid 125 → 0.24; temperate conifers 50 → 0.29 and 150 → 0.29 (150.000001 → 0.20);
    other broadleaf 75 → 0.23, 150 → 0.23; boreal 75 → 0.24; Quercus 70 → refused (the table starts above 70).
    """
    rows = [r for r in load_table("root_to_shoot")["rows"] if r["ecological_zone"] == ecological_zone]
    if not rows:
        raise MissingParameterError("root_to_shoot", gettext_noop("Table 4.4 has no ecological zone %(zone)s"),
                                    zone=repr(ecological_zone))
    types = {r["forest_type"] for r in rows}
    if types != {None}:
        match = [r for r in rows if r["forest_type"] == forest_type]
        if not match:
            raise MissingParameterError(
                "forest_type",
                gettext_noop("Table 4.4 splits %(zone)s by forest type %(types)s, got %(got)s"),
                zone=repr(ecological_zone), types=str(sorted(types)), got=repr(forest_type),
            )
        row = match[0]
    else:
        row = rows[0]
    if not row["bands"]:
        raise MissingParameterError(
            "root_to_shoot", gettext_noop("IPCC 2006 Table 4.4 gives no estimate (NA) of R for %(zone)s"),
            zone=repr(ecological_zone),
        )
    for band in row["bands"]:
        if _in_band(agb_t_dm_per_ha, band["agb_min_t_dm_per_ha"], band["agb_min_inclusive"],
                    band["agb_max_t_dm_per_ha"], band["agb_max_inclusive"]):
            value = TableValue(float(band["value"]), "1", band["unconfirmed"], _origin(band["source"]),
                               band["table_wording"])
            return _accept(value, "root_to_shoot", allow_unconfirmed)
    wordings = [b["table_wording"] for b in row["bands"]]
    raise MissingParameterError(
        "root_to_shoot",
        gettext_noop("Table 4.4 has no band for AGB = %(agb)s t d.m./ha in %(zone)s%(forest_type)s (bands %(bands)s)"),
        agb=agb_t_dm_per_ha, zone=repr(ecological_zone), forest_type=" / " + forest_type if forest_type else "",
        bands=str(wordings),
    )


def default_carbon_fraction(key: str = "default", *, allow_unconfirmed: bool) -> TableValue:
    """Carbon fraction of dry matter, t C/t d.m. (Table 4.3); 'default' is 0.47."""
    for row in load_table("carbon_fraction")["rows"]:
        if row["key"] == key:
            value = TableValue(float(row["value"]), "t C/t d.m.", row["unconfirmed"], _origin(row["source"]))
            return _accept(value, "carbon_fraction", allow_unconfirmed)
    raise MissingParameterError("carbon_fraction", gettext_noop("Table 4.3 has no carbon fraction %(key)s"),
                                key=repr(key))


def bcef_t_dm_per_m3(forest_group: str, volume_m3_per_ha: float, *, allow_unconfirmed: bool) -> TableValue:
    """BCEF_S, t above-ground d.m. per m³ of growing stock, by growing-stock class (Table 4.5).
    Classes are (lower, upper] in m³/ha: 20 → '≤20', 40 → '21–40', 100 → '41–100', 200 → '100–200'."""
    rows = [r for r in load_table("bcef")["rows"] if r["forest_group"] == forest_group]
    if not rows:
        groups = sorted(r["forest_group"] for r in load_table("bcef")["rows"])
        raise MissingParameterError("bcef_t_dm_per_m3",
                                    gettext_noop("Table 4.5 has no group %(group)s (has %(groups)s)"),
                                    group=repr(forest_group), groups=str(groups))
    for band in rows[0]["bands"]:
        if _in_band(volume_m3_per_ha, band["volume_min_m3_per_ha"], band["volume_min_inclusive"],
                    band["volume_max_m3_per_ha"], band["volume_max_inclusive"]):
            value = TableValue(float(band["value"]), "t d.m./m3", band["unconfirmed"], _origin(band["source"]),
                               band["table_wording"])
            return _accept(value, "bcef_t_dm_per_m3", allow_unconfirmed)
    raise MissingParameterError("bcef_t_dm_per_m3", gettext_noop("Table 4.5 has no class for %(volume)s m3/ha"),
                                volume=volume_m3_per_ha)


def grassland_biomass_t_dm_per_ha(climate_zone: str, *, allow_unconfirmed: bool) -> tuple[TableValue, TableValue]:
    """(total, above-ground) grassland biomass, t d.m./ha (Table 6.4)."""
    for row in load_table("grassland_biomass")["rows"]:
        if row["climate_zone"] == climate_zone:
            origin = _origin(row["source"])
            total = TableValue(float(row["total_t_dm_per_ha"]), "t d.m./ha", row["unconfirmed"], origin, "total")
            above = TableValue(float(row["above_ground_t_dm_per_ha"]), "t d.m./ha", row["unconfirmed"], origin,
                               "above-ground")
            return (_accept(total, "grassland total biomass", allow_unconfirmed),
                    _accept(above, "agb_t_dm_per_ha", allow_unconfirmed))
    zones = [r["climate_zone"] for r in load_table("grassland_biomass")["rows"]]
    raise MissingParameterError("agb_t_dm_per_ha",
                                gettext_noop("Table 6.4 has no climate zone %(zone)s (has %(zones)s)"),
                                zone=repr(climate_zone), zones=str(zones))


def soc_ref_t_c_per_ha(climate_zone: str, soil_type: str, *, allow_unconfirmed: bool) -> TableValue:
    """SOC_REF, t C/ha in 0–30 cm (Table 2.3)."""
    for row in load_table("soc_ref")["rows"]:
        if row["climate_zone"] == climate_zone and row["soil_type"] == soil_type:
            if row["value"] is None:
                raise MissingParameterError(
                    "soc_ref_t_c_per_ha", gettext_noop("Table 2.3 gives no SOC_REF (NA) for %(zone)s / %(soil)s soils"),
                    zone=repr(climate_zone), soil=repr(soil_type),
                )
            value = TableValue(float(row["value"]), "t C/ha", row["unconfirmed"], _origin(row["source"]))
            return _accept(value, "soc_ref_t_c_per_ha", allow_unconfirmed)
    raise MissingParameterError(
        "soc_ref_t_c_per_ha", gettext_noop("Table 2.3 has no row for climate zone %(zone)s and soil type %(soil)s"),
        zone=repr(climate_zone), soil=repr(soil_type),
    )


def grassland_soc_factor(factor: str, level: str, climate_regime: str, *, allow_unconfirmed: bool) -> TableValue:
    """F_LU, F_MG or F_I for grassland (Table 6.2). `climate_regime`: 'temperate_boreal' or 'tropical'."""
    for row in load_table("grassland_soc_factors")["rows"]:
        if row["factor"] == factor and row["level"] == level and row["climate_regime"] in ("all", climate_regime):
            value = TableValue(float(row["value"]), "1", row["unconfirmed"], _origin(row["source"]), level)
            return _accept(value, factor, allow_unconfirmed)
    raise MissingParameterError(factor, gettext_noop("Table 6.2 has no %(factor)s for level %(level)s in %(regime)s "
                                                     "climates"), factor=factor, level=repr(level),
                                regime=repr(climate_regime))
