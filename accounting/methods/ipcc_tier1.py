"""IPCC 2006 Tier 1 stocks per land-use category (2006 IPCC Guidelines Vol 4).

Per land-cover class with area, its IPCC category (from the legend: forest_land, grassland, cropland, wetlands,
settlements, other_land) selects a stratum of parameters: the category's entry in `categories`, overridden key by
key by the class's entry in `classes`. Densities per class:

    c_above = AGB × CF                          t d.m./ha × t C/t d.m. = t C/ha
    c_below = AGB × R × CF                      R = below-ground / above-ground, t d.m./t d.m.
    c_dead  = dead wood + litter                t C/ha (0 unless given: Tier 1 assumes DOM stocks unchanged)
    c_soil  = SOC_ref × F_LU × F_MG × F_I       t C/ha in 0–30 cm (Vol 4 Ch 2 Eq 2.25)

Where the values come from, unless the stratum gives them:
- forest_land: AGB Table 4.7 (ecological_zone, continent, stand_age_class), R Table 4.4 (band chosen by that
  AGB), CF 0.47 Table 4.3; soil factors F_LU = F_MG = F_I = 1 (Tier 1, Vol 4 Ch 4 section 4.2.3).
- grassland: Table 6.4 by grassland_climate_zone gives total and above-ground biomass; R = (total − above)/above,
  so c_below = (total − above) × CF exactly. Soil: F_LU from Table 6.2, F_MG by `management`, F_I by
  `input_level` (default medium = 1).
- cropland, wetlands, settlements, other_land: nothing is shipped; agb_t_dm_per_ha, root_to_shoot and the soil
  factors must be given (0 is a valid, explicit answer).
Every gap raises MissingParameterError naming the parameter to supply (e.g. R for subtropical mountain systems).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import tables
from .errors import MissingClassError, MissingParameterError, TranslatableMessage, gettext_noop
from .pool_table import check_areas
from .spec import IPCC_CATEGORIES, ipcc_category_key
from .terms import Factor, StockTerm


@dataclass(frozen=True, slots=True)
class ParameterUse:
    """Which value a calculation used and where it came from ("parameters" or a table citation)."""

    lucode: int
    name: str
    value: float
    unit: str
    origin: str
    unconfirmed: bool = False


class _Recorder:
    def __init__(self, lucode: int):
        self.lucode = lucode
        self.uses: list[ParameterUse] = []

    def given(self, name: str, value: float, unit: str) -> float:
        self.uses.append(ParameterUse(self.lucode, name, value, unit, "parameters"))
        return value

    def table(self, name: str, tv: tables.TableValue) -> float:
        origin = tv.origin + (f" [{tv.wording}]" if tv.wording else "")
        self.uses.append(ParameterUse(self.lucode, name, tv.value, tv.unit, origin, tv.unconfirmed))
        return tv.value


def _need(stratum: Mapping[str, Any], key: str, why: str, lucode: int, category: str) -> Any:
    """stratum[key], or MissingParameterError saying `why` it is needed (a message marked with gettext_noop)."""
    if stratum.get(key) is None:
        raise MissingParameterError(key, gettext_noop("class %(lucode)s (%(category)s): %(why)s"), lucode=lucode,
                                    category=category, why=TranslatableMessage(why))
    return stratum[key]


def class_stratum(
    parameters: Mapping[str, Any], lucode: int, category: str
) -> dict[str, Any]:
    """The category's parameters overridden by the class's (normalised parameters)."""
    base = parameters["categories"].get(category)
    own = parameters.get("classes", {}).get(str(lucode))
    if base is None and own is None:
        raise MissingParameterError(
            f"categories.{category}",
            gettext_noop("class %(lucode)s is %(category)s but the method has no parameters for that category or "
                         "class"), lucode=lucode, category=category,
        )
    merged = dict(base or {})
    merged.update(own or {})
    return merged


def _biomass(stratum, category, lucode, rec: _Recorder, allow) -> tuple[float, float, float]:
    """(AGB t d.m./ha, R, CF) for one class."""
    if category == "forest_land":
        if stratum.get("agb_t_dm_per_ha") is not None:
            agb = rec.given("agb_t_dm_per_ha", stratum["agb_t_dm_per_ha"], "t d.m./ha")
        else:
            zone = _need(stratum, "ecological_zone",
                         gettext_noop("Table 4.7 needs the ecological zone (or give agb_t_dm_per_ha)"),
                         lucode, category)
            continent = _need(stratum, "continent",
                              gettext_noop("Table 4.7 needs the continent (or give agb_t_dm_per_ha)"), lucode, category)
            agb = rec.table("agb_t_dm_per_ha", tables.forest_agb_t_dm_per_ha(
                zone, continent, stratum.get("stand_age_class"), allow_unconfirmed=allow))
        if stratum.get("root_to_shoot") is not None:
            r = rec.given("root_to_shoot", stratum["root_to_shoot"], "1")
        else:
            zone = _need(stratum, "ecological_zone",
                         gettext_noop("Table 4.4 needs the ecological zone (or give root_to_shoot)"), lucode, category)
            r = rec.table("root_to_shoot", tables.root_to_shoot_ratio(
                zone, stratum.get("forest_type"), agb, allow_unconfirmed=allow))
    elif category == "grassland" and stratum.get("agb_t_dm_per_ha") is None:
        zone = _need(stratum, "grassland_climate_zone",
                     gettext_noop("Table 6.4 needs grassland_climate_zone (or give agb_t_dm_per_ha and root_to_shoot)"),
                     lucode, category)
        total_tv, above_tv = tables.grassland_biomass_t_dm_per_ha(zone, allow_unconfirmed=allow)
        agb = rec.table("agb_t_dm_per_ha", above_tv)
        rec.table("total_biomass_t_dm_per_ha", total_tv)
        if stratum.get("root_to_shoot") is not None:
            r = rec.given("root_to_shoot", stratum["root_to_shoot"], "1")
        else:
            # Table 6.4 gives total and above-ground; the below-ground share as a ratio keeps one product form.
            r = (total_tv.value - above_tv.value) / above_tv.value
            rec.uses.append(ParameterUse(lucode, "root_to_shoot", r, "1",
                                         f"(total − above) / above from {total_tv.origin}", total_tv.unconfirmed))
    else:
        why = (gettext_noop("IPCC Tier 1 ships no biomass default for this category here")
               if category != "grassland" else gettext_noop("root_to_shoot is needed with a given agb_t_dm_per_ha"))
        agb = rec.given("agb_t_dm_per_ha", _need(stratum, "agb_t_dm_per_ha", why, lucode, category), "t d.m./ha")
        r = rec.given("root_to_shoot", _need(stratum, "root_to_shoot", why, lucode, category), "1")
    if stratum.get("carbon_fraction") is not None:
        cf = rec.given("carbon_fraction", stratum["carbon_fraction"], "t C/t d.m.")
    else:
        cf = rec.table("carbon_fraction", tables.default_carbon_fraction(allow_unconfirmed=allow))
    return agb, r, cf


def _soil(soc: Mapping[str, Any], category, lucode, rec: _Recorder, allow) -> tuple[float, float, float, float]:
    """(SOC_ref t C/ha, F_LU, F_MG, F_I) for one class."""
    if soc.get("soc_ref_t_c_per_ha") is not None:
        soc_ref = rec.given("soc_ref_t_c_per_ha", soc["soc_ref_t_c_per_ha"], "t C/ha")
    else:
        zone = _need(soc, "climate_zone",
                     gettext_noop("Table 2.3 needs soc.climate_zone (or give soc.soc_ref_t_c_per_ha)"),
                     lucode, category)
        soil = _need(soc, "soil_type",
                     gettext_noop("Table 2.3 needs soc.soil_type (or give soc.soc_ref_t_c_per_ha)"), lucode, category)
        soc_ref = rec.table("soc_ref_t_c_per_ha", tables.soc_ref_t_c_per_ha(zone, soil, allow_unconfirmed=allow))
    factors = []
    for name in ("f_lu", "f_mg", "f_i"):
        if soc.get(name) is not None:
            factors.append(rec.given(name, soc[name], "1"))
        elif category == "forest_land":
            factors.append(_forest_factor(rec, name))
        elif category == "grassland":
            regime = "tropical" if str(soc.get("climate_zone", "")).startswith("tropical") else "temperate_boreal"
            level = {"f_lu": "all", "f_mg": soc.get("management"), "f_i": soc.get("input_level") or "medium"}[name]
            if level is None:
                raise MissingParameterError(
                    "soc.management", gettext_noop("class %(lucode)s (grassland): Table 6.2 F_MG needs soc.management "
                                                   "(nominally_managed, moderately_degraded, severely_degraded, "
                                                   "improved) or soc.f_mg"), lucode=lucode)
            factors.append(rec.table(name, tables.grassland_soc_factor(name, level, regime, allow_unconfirmed=allow)))
        else:
            raise MissingParameterError(f"soc.{name}",
                                        gettext_noop("class %(lucode)s (%(category)s): no Tier 1 default is shipped"),
                                        lucode=lucode, category=category)
    return soc_ref, factors[0], factors[1], factors[2]


def _forest_factor(rec: _Recorder, name: str) -> float:
    rec.uses.append(ParameterUse(rec.lucode, name, 1.0, "1",
                                 "IPCC 2006 Vol 4 Ch 4 section 4.2.3: Tier 1 forest soil factors = 1"))
    return 1.0


def ipcc_tier1_terms(
    parameters: Mapping[str, Any],
    area_ha_by_class: Mapping[int, float],
    ipcc_category_by_class: Mapping[int, str],
) -> tuple[tuple[StockTerm, ...], tuple[ParameterUse, ...]]:
    """Stock terms (one per class with area and pool) and the parameter values used, from normalised parameters.

    Raises MissingClassError for classes with area but no category, MissingParameterError for any value that
    neither the parameters nor the shipped tables provide.
    """
    areas = check_areas(area_ha_by_class)
    categories = {int(k): ipcc_category_key(v) for k, v in ipcc_category_by_class.items()}
    missing = [c for c, a in areas.items() if a > 0 and c not in categories]
    if missing:
        raise MissingClassError(missing, where=gettext_noop("ipcc_category_by_class (the land-cover legend)"))
    unknown = {c: categories[c] for c, a in areas.items() if a > 0 and categories[c] not in IPCC_CATEGORIES}
    if unknown:
        raise MissingParameterError(
            "ipcc_category_by_class", gettext_noop("categories %(unknown)s are not IPCC land-use categories "
                                                   "%(categories)s"), unknown=str(unknown),
            categories=str(list(IPCC_CATEGORIES)))
    allow = parameters["allow_unconfirmed_defaults"]
    u = parameters["uncertainty_pct"]
    terms: list[StockTerm] = []
    uses: list[ParameterUse] = []
    for code in sorted(areas):
        area = areas[code]
        if area <= 0:
            continue
        category = categories[code]
        stratum = class_stratum(parameters, code, category)
        rec = _Recorder(code)
        agb, r, cf = _biomass(stratum, category, code, rec, allow)
        # Keys: a class's own values are keyed by class; table defaults shared by several classes are one quantity.
        area_f = Factor("area_ha", area, "ha", u["area"], f"area_ha[{code}]")
        agb_f = Factor("agb_t_dm_per_ha", agb, "t d.m./ha", u["agb"], f"agb[{category}:{agb}]")
        r_f = Factor("root_to_shoot", r, "1", u["root_to_shoot"], f"root_to_shoot[{category}:{r}]")
        cf_f = Factor("carbon_fraction", cf, "t C/t d.m.", u["carbon_fraction"], f"carbon_fraction[{cf}]")
        terms.append(StockTerm(code, "c_above", (area_f, agb_f, cf_f)))
        terms.append(StockTerm(code, "c_below", (area_f, agb_f, r_f, cf_f)))
        dead = stratum.get("dead_wood_t_c_per_ha") or 0.0
        litter = stratum.get("litter_t_c_per_ha") or 0.0
        rec.given("dead_wood_t_c_per_ha", dead, "t C/ha")
        rec.given("litter_t_c_per_ha", litter, "t C/ha")
        terms.append(StockTerm(code, "c_dead", (area_f, Factor(
            "dead_organic_matter_t_c_per_ha", dead + litter, "t C/ha", u["dead_organic_matter"],
            f"dead_organic_matter[{code}]"))))
        soc = stratum.get("soc")
        if soc is not None:
            soc_ref, f_lu, f_mg, f_i = _soil(soc, category, code, rec, allow)
            terms.append(StockTerm(code, "c_soil", (
                area_f,
                Factor("soc_ref_t_c_per_ha", soc_ref, "t C/ha", u["soc_ref"], f"soc_ref[{category}:{soc_ref}]"),
                Factor("f_lu", f_lu, "1", u["f_lu"], f"f_lu[{category}:{f_lu}]"),
                Factor("f_mg", f_mg, "1", u["f_mg"], f"f_mg[{category}:{f_mg}]"),
                Factor("f_i", f_i, "1", u["f_i"], f"f_i[{category}:{f_i}]"),
            )))
        elif "soc" not in stratum:
            raise MissingParameterError(
                "soc", gettext_noop("class %(lucode)s (%(category)s): say how soil carbon is estimated, or set soc to "
                                    "null to leave the soil pool out"), lucode=code, category=category)
        uses.extend(rec.uses)
    return tuple(terms), tuple(uses)
