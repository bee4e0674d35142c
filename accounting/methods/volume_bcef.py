"""Stock from growing-stock volume (IPCC 2006 Vol 4 Ch 2 Eq 2.8; the inventory method of Chinese forestry
standards, e.g. the LY/T species standards that supply BCEF, R and CF per species):

    biomass = V × BCEF × (1 + R)          m³/ha × t d.m./m³ = t d.m./ha
    carbon  = biomass × CF                t d.m./ha × t C/t d.m. = t C/ha
    c_above = V × BCEF × CF,  c_below = V × BCEF × R × CF

Worked check (reference doc): 100 m³/ha temperate hardwood, BCEF 1.4, R 0.23, CF 0.47 →
100 × 1.4 × 1.23 × 0.47 = 80.934 t C/ha → × 44/12 = 296.758 t CO2/ha.

Volume per class comes from, in order: the parcel's `attributes["volume_m3_per_ha_by_class"][lucode]`, the
parcel's `attributes["volume_m3_per_ha"]` (one inventory figure for the parcel), the class's
`volume_m3_per_ha` parameter; none → MissingParameterError. BCEF: the class's `bcef_t_dm_per_m3` or Table 4.5 by
`bcef_group` and that volume. R: `root_to_shoot` or Table 4.4 by `ecological_zone`/`forest_type` and
AGB = V × BCEF. No species table is shipped: the reference gives no sourced per-species values for Sichuan
species (Cunninghamia, Pinus massoniana, …); supply them from the species standard you use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import tables
from .errors import MissingClassError, MissingParameterError, gettext_noop
from .ipcc_tier1 import ParameterUse, _Recorder
from .pool_table import check_areas
from .terms import Factor, StockTerm


def _volume(code: int, cls: Mapping[str, Any], attributes: Mapping[str, Any], rec: _Recorder) -> float:
    by_class = attributes.get("volume_m3_per_ha_by_class") or {}
    by_class = {int(k): v for k, v in by_class.items()}
    if code in by_class:
        value, origin = by_class[code], "parcel attribute volume_m3_per_ha_by_class"
    elif attributes.get("volume_m3_per_ha") is not None:
        value, origin = attributes["volume_m3_per_ha"], "parcel attribute volume_m3_per_ha"
    elif cls.get("volume_m3_per_ha") is not None:
        value, origin = cls["volume_m3_per_ha"], "parameters"
    else:
        raise MissingParameterError(
            "volume_m3_per_ha", gettext_noop("class %(lucode)s: no growing-stock volume in the parcel attributes or "
                                             "the method"), lucode=code)
    value = float(value)
    if not value >= 0:
        raise MissingParameterError("volume_m3_per_ha", gettext_noop("class %(lucode)s: volume must be >= 0 m3/ha, "
                                                                     "got %(value)s"), lucode=code, value=value)
    rec.uses.append(ParameterUse(code, "volume_m3_per_ha", value, "m3/ha", origin))
    return value


def volume_bcef_terms(
    parameters: Mapping[str, Any],
    area_ha_by_class: Mapping[int, float],
    attributes: Mapping[str, Any] | None = None,
) -> tuple[tuple[StockTerm, ...], tuple[ParameterUse, ...]]:
    """Stock terms and the values used, from normalised `volume_bcef` parameters."""
    areas = check_areas(area_ha_by_class)
    attributes = attributes or {}
    classes = {int(k): v for k, v in parameters["classes"].items()}
    zero = set(parameters["zero_stock_classes"])
    missing = [c for c, a in areas.items() if a > 0 and c not in classes and c not in zero]
    if missing:
        raise MissingClassError(missing, where=gettext_noop("the volume_bcef classes or zero_stock_classes"))
    allow = parameters["allow_unconfirmed_defaults"]
    u = parameters["uncertainty_pct"]
    terms: list[StockTerm] = []
    uses: list[ParameterUse] = []
    for code in sorted(areas):
        area = areas[code]
        if area <= 0 or code in zero:
            continue
        cls = classes[code]
        rec = _Recorder(code)
        volume = _volume(code, cls, attributes, rec)
        if cls.get("bcef_t_dm_per_m3") is not None:
            bcef = rec.given("bcef_t_dm_per_m3", cls["bcef_t_dm_per_m3"], "t d.m./m3")
        else:
            bcef = rec.table("bcef_t_dm_per_m3", tables.bcef_t_dm_per_m3(cls["bcef_group"], volume,
                                                                         allow_unconfirmed=allow))
        if cls.get("root_to_shoot") is not None:
            r = rec.given("root_to_shoot", cls["root_to_shoot"], "1")
        else:
            r = rec.table("root_to_shoot", tables.root_to_shoot_ratio(
                cls["ecological_zone"], cls.get("forest_type"), volume * bcef, allow_unconfirmed=allow))
        if cls.get("carbon_fraction") is not None:
            cf = rec.given("carbon_fraction", cls["carbon_fraction"], "t C/t d.m.")
        else:
            cf = rec.table("carbon_fraction", tables.default_carbon_fraction(allow_unconfirmed=allow))
        area_f = Factor("area_ha", area, "ha", u["area"], f"area_ha[{code}]")
        vol_f = Factor("volume_m3_per_ha", volume, "m3/ha", u["volume"], f"volume[{code}]")
        bcef_f = Factor("bcef_t_dm_per_m3", bcef, "t d.m./m3", u["bcef"], f"bcef[{code}]")
        r_f = Factor("root_to_shoot", r, "1", u["root_to_shoot"], f"root_to_shoot[{code}]")
        cf_f = Factor("carbon_fraction", cf, "t C/t d.m.", u["carbon_fraction"], f"carbon_fraction[{code}]")
        terms.append(StockTerm(code, "c_above", (area_f, vol_f, bcef_f, cf_f)))
        terms.append(StockTerm(code, "c_below", (area_f, vol_f, bcef_f, r_f, cf_f)))
        soil = cls.get("soil_t_c_per_ha") or 0.0
        dom = cls.get("dead_organic_matter_t_c_per_ha") or 0.0
        terms.append(StockTerm(code, "c_soil", (area_f, Factor("soil_t_c_per_ha", rec.given(
            "soil_t_c_per_ha", soil, "t C/ha"), "t C/ha", u["soil"], f"soil[{code}]"))))
        terms.append(StockTerm(code, "c_dead", (area_f, Factor("dead_organic_matter_t_c_per_ha", rec.given(
            "dead_organic_matter_t_c_per_ha", dom, "t C/ha"), "t C/ha", u["dead_organic_matter"], f"dom[{code}]"))))
        uses.extend(rec.uses)
    return tuple(terms), tuple(uses)


def volume_bcef_stock_t_c_per_ha(
    volume_m3_per_ha: float, bcef_t_dm_per_m3: float, root_to_shoot: float, carbon_fraction: float
) -> float:
    """Eq 2.8 per hectare: V × BCEF × (1 + R) × CF, t C/ha."""
    return volume_m3_per_ha * bcef_t_dm_per_m3 * (1.0 + root_to_shoot) * carbon_fraction
