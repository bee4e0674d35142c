"""Method parameters as data: each method kind declares its parameters (type, unit, description), like InVEST's
MODEL_SPEC, and one validator reads the declaration.

`validate_method_parameters(kind, parameters)` returns the normalised parameters (numbers as float, land-cover
codes as decimal strings, defaults written in, category names in snake_case) or raises MethodParameterError naming
every bad parameter by its path (e.g. `pools[3].c_soil`, `categories.forest_land.root_to_shoot`). Unknown keys are
refused, so a misspelt parameter never passes unnoticed.

`method_parameters_hash(kind, parameters)` is the sha256 (hex) of the RFC 8785 canonical JSON of
{"kind": kind, "parameters": normalised parameters}: key order and number spelling (1 vs 1.0) do not change it,
any changed number does.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from .errors import MethodParameterError, TranslatableMessage, gettext_noop
from .units import POOLS

_NO_DEFAULT = object()

IPCC_CATEGORIES = ("forest_land", "grassland", "cropland", "wetlands", "settlements", "other_land")


def ipcc_category_key(name: str) -> str:
    """'Forest land', 'forest-land', 'FOREST_LAND' → 'forest_land'."""
    return "_".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())



MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer every JSON parser holds exactly (RFC 8785)

@dataclass(frozen=True)
class Param:
    """One declared parameter.

    type: "number", "integer", "boolean", "string", "object" (fixed `fields`), "mapping" (keys of `key_type`
    "lucode" or "category" or "string", values `values`), "list" (items `values`).
    """

    name: str
    type: str
    description: str
    unit: str | None = None
    required: bool = True
    default: Any = _NO_DEFAULT
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    options: tuple[str, ...] | None = None
    fields: tuple[Param, ...] = ()
    values: Param | None = None
    key_type: str = "string"
    nullable: bool = False

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for the API and docs."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "description": self.description}
        if self.unit is not None:
            out["unit"] = self.unit
        out["required"] = self.required and self.default is _NO_DEFAULT
        if self.default is not _NO_DEFAULT:
            out["default"] = self.default
        for attr in ("minimum", "maximum", "options"):
            if getattr(self, attr) is not None:
                out[attr] = list(getattr(self, attr)) if attr == "options" else getattr(self, attr)
        if self.exclusive_minimum:
            out["exclusive_minimum"] = True
        if self.nullable:
            out["nullable"] = True
        if self.fields:
            out["fields"] = [f.describe() for f in self.fields]
        if self.values is not None:
            out["values"] = self.values.describe()
        if self.type == "mapping":
            out["key_type"] = self.key_type
        return out


@dataclass(frozen=True)
class MethodSpec:
    kind: str
    description: str
    parameters: tuple[Param, ...]
    checks: tuple = field(default=())  # extra whole-document checks: fn(normalised, problems) -> None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description,
                "parameters": [p.describe() for p in self.parameters]}


def _validate(spec: Param, value: Any, path: str, problems: dict[str, str]) -> Any:
    if value is None:
        if spec.nullable:
            return None
        problems[path] = TranslatableMessage(gettext_noop("expected %(type)s, got null"), type=spec.type)
        return None
    t = spec.type
    if t in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems[path] = TranslatableMessage(
                gettext_noop("expected a number%(unit)s, got %(got)s") if t == "number" else
                gettext_noop("expected an integer%(unit)s, got %(got)s"),
                unit=f" ({spec.unit})" if spec.unit else "", got=repr(value))
            return None
        if abs(value) > MAX_SAFE_INTEGER and (isinstance(value, int) or t == "integer"):
            # Beyond what JSON numbers (IEEE doubles) carry exactly, so the parameters could not be hashed.
            problems[path] = TranslatableMessage(gettext_noop("expected a number within ±%(limit)s, got %(got)s"),
                                                 limit=MAX_SAFE_INTEGER, got=repr(value))
            return None
        if t == "integer" and not float(value).is_integer():
            problems[path] = TranslatableMessage(gettext_noop("expected an integer, got %(got)s"), got=repr(value))
            return None
        number = int(value) if t == "integer" else float(value)
        if not math.isfinite(number):
            problems[path] = TranslatableMessage(gettext_noop("expected a finite number, got %(got)s"), got=repr(value))
            return None
        if spec.minimum is not None and (number < spec.minimum or (spec.exclusive_minimum and number == spec.minimum)):
            relation = ">" if spec.exclusive_minimum else ">="
            problems[path] = TranslatableMessage(gettext_noop("expected %(relation)s %(bound)s%(unit)s, got %(got)s"),
                                                 relation=relation, bound=spec.minimum,
                                                 unit=f" {spec.unit}" if spec.unit else "", got=repr(value))
        if spec.maximum is not None and number > spec.maximum:
            problems[path] = TranslatableMessage(gettext_noop("expected %(relation)s %(bound)s%(unit)s, got %(got)s"),
                                                 relation="<=", bound=spec.maximum,
                                                 unit=f" {spec.unit}" if spec.unit else "", got=repr(value))
        return number
    if t == "boolean":
        if not isinstance(value, bool):
            problems[path] = TranslatableMessage(gettext_noop("expected true or false, got %(got)s"), got=repr(value))
        return value
    if t == "string":
        if not isinstance(value, str) or not value.strip():
            problems[path] = TranslatableMessage(gettext_noop("expected a non-empty string, got %(got)s"),
                                                 got=repr(value))
            return None
        if spec.options is not None and value not in spec.options:
            problems[path] = TranslatableMessage(gettext_noop("expected one of %(options)s, got %(got)s"),
                                                 options=str(list(spec.options)), got=repr(value))
        return value
    if t == "object":
        if not isinstance(value, Mapping):
            problems[path] = TranslatableMessage(gettext_noop("expected an object, got %(got)s"),
                                                 got=type(value).__name__)
            return None
        return _validate_fields(spec.fields, value, path, problems)
    if t == "mapping":
        if not isinstance(value, Mapping):
            problems[path] = TranslatableMessage(gettext_noop("expected an object keyed by %(key_type)s, got %(got)s"),
                                                 key_type=spec.key_type, got=type(value).__name__)
            return None
        out = {}
        for key, item in value.items():
            norm_key = _key(spec.key_type, key, f"{path}.{key}", problems)
            if norm_key is None:
                continue
            if norm_key in out:
                problems[f"{path}.{key}"] = TranslatableMessage(gettext_noop("key repeats %(key)s after normalisation"),
                                                                key=repr(norm_key))
                continue
            out[norm_key] = _validate(spec.values, item, f"{path}.{norm_key}", problems)
        return out
    if t == "list":
        if not isinstance(value, (list, tuple)):
            problems[path] = TranslatableMessage(gettext_noop("expected a list, got %(got)s"), got=type(value).__name__)
            return None
        return [_validate(spec.values, item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    raise AssertionError(f"unknown parameter type {t!r}")  # a spec bug, not user input


def _key(key_type: str, key: Any, path: str, problems: dict[str, str]) -> str | None:
    if key_type == "lucode":
        try:
            if isinstance(key, bool) or not float(str(key).strip()).is_integer():
                raise ValueError
            return str(int(float(str(key).strip())))
        except ValueError:
            problems[path] = TranslatableMessage(
                gettext_noop("expected an integer land-cover code as key, got %(got)s"), got=repr(key))
            return None
    if key_type == "category":
        norm = ipcc_category_key(key)
        if norm not in IPCC_CATEGORIES:
            problems[path] = TranslatableMessage(gettext_noop("expected an IPCC land-use category %(categories)s, got "
                                                              "%(got)s"), categories=str(list(IPCC_CATEGORIES)),
                                                 got=repr(key))
            return None
        return norm
    return str(key)


def _validate_fields(fields: tuple[Param, ...], value: Mapping, path: str, problems: dict[str, str]) -> dict:
    prefix = f"{path}." if path else ""
    known = {f.name for f in fields}
    for key in value:
        if key not in known:
            problems[f"{prefix}{key}"] = TranslatableMessage(gettext_noop("unknown parameter; expected one of "
                                                                          "%(known)s"), known=str(sorted(known)))
    out = {}
    for f in fields:
        if f.name in value:
            out[f.name] = _validate(f, value[f.name], f"{prefix}{f.name}", problems)
        elif f.default is not _NO_DEFAULT:
            out[f.name] = f.default
        elif f.required:
            problems[f"{prefix}{f.name}"] = TranslatableMessage(gettext_noop("required (%(description)s)"),
                                                                description=f.description)
    return out


# ---------------------------------------------------------------------------------------------------- the specs

def _u(name: str, what: str) -> Param:
    return Param(name, "number", f"95 % half-width of {what}, percent of its value", unit="%", minimum=0.0,
                 default=0.0)


def _uncertainty(names: dict[str, str]) -> Param:
    return Param(
        "uncertainty_pct", "object",
        "per-parameter uncertainty (IPCC U: half-width of the 95 % interval in percent of the value); 0 = taken "
        "as exact; written in explicitly so the hash and the stored version show it",
        fields=tuple(_u(k, v) for k, v in names.items()), default=dict.fromkeys(names, 0.0),
    )


_ALLOW_UNCONFIRMED = Param(
    "allow_unconfirmed_defaults", "boolean",
    "use shipped IPCC defaults marked unconfirmed (from memory, not yet checked against the IPCC PDF); "
    "when false such a default is refused and the value must be supplied",
    default=False,
)

_density = lambda pool, what: Param(  # noqa: E731
    pool, "number", f"{what} carbon density", unit="t C/ha", minimum=0.0)

POOL_TABLE_SPEC = MethodSpec(
    "pool_table",
    "InVEST carbon pool table: stock = Σ_class area_ha × (c_above + c_below + c_soil + c_dead) t C/ha",
    (
        Param("pools", "list", "one row per land-cover class, as in InVEST's carbon pool table", values=Param(
            "row", "object", "densities of one class", fields=(
                Param("lucode", "integer", "land-cover code as in the raster"),
                _density("c_above", "above-ground biomass"),
                _density("c_below", "below-ground biomass"),
                _density("c_soil", "soil organic"),
                _density("c_dead", "dead organic matter"),
                Param("lulc_name", "string", "class name, for people only", required=False),
            ))),
        _uncertainty({"area": "each class area", **{p: f"the {p} density" for p in POOLS}}),
    ),
)

_STRATUM_FIELDS = (
    Param("ecological_zone", "string", "FAO global ecological zone of Table 4.7/4.4, snake_case, e.g. "
          "'temperate_continental_forest', 'subtropical_mountain_systems' (forest land)", required=False),
    Param("continent", "string", "Table 4.7 column: africa, north_america, south_america, asia_continental, "
          "asia_insular, europe, new_zealand", required=False),
    Param("stand_age_class", "string", "Table 4.7 age split for temperate continental/mountain and boreal "
          "tundra/mountain zones", required=False, options=("<=20", ">20")),
    Param("forest_type", "string", "Table 4.4 temperate split", required=False,
          options=("conifers", "quercus", "eucalyptus", "other_broadleaf")),
    Param("grassland_climate_zone", "string", "IPCC climate zone of Table 6.4 (grassland): boreal, "
          "cold_temperate_dry, cold_temperate_wet, warm_temperate_dry, warm_temperate_wet, tropical_dry, "
          "tropical_moist_wet", required=False),
    Param("agb_t_dm_per_ha", "number", "above-ground biomass; overrides the table", unit="t d.m./ha",
          minimum=0.0, required=False),
    Param("root_to_shoot", "number", "R, below-ground over above-ground biomass; overrides Table 4.4",
          unit="t d.m./t d.m.", minimum=0.0, required=False),
    Param("carbon_fraction", "number", "carbon fraction of dry matter; default 0.47 (Table 4.3)",
          unit="t C/t d.m.", minimum=0.0, maximum=1.0, required=False),
    Param("dead_wood_t_c_per_ha", "number", "dead wood carbon (Tier 1 assumes DOM stocks unchanged; "
          "0 unless given)", unit="t C/ha", minimum=0.0, required=False),
    Param("litter_t_c_per_ha", "number", "litter carbon (0 unless given)", unit="t C/ha", minimum=0.0,
          required=False),
    Param("soc", "object", "soil organic carbon SOC = SOC_ref × F_LU × F_MG × F_I (0–30 cm); null leaves the "
          "soil pool out", nullable=True, required=False, fields=(
              Param("climate_zone", "string", "IPCC climate zone of Table 2.3, e.g. warm_temperate_moist",
                    required=False),
              Param("soil_type", "string", "Table 2.3 column", required=False,
                    options=("hac", "lac", "sandy", "spodic", "volcanic", "wetland")),
              Param("soc_ref_t_c_per_ha", "number", "SOC_ref; overrides Table 2.3", unit="t C/ha", minimum=0.0,
                    required=False),
              Param("f_lu", "number", "land-use factor", unit="1", minimum=0.0, required=False),
              Param("f_mg", "number", "management factor", unit="1", minimum=0.0, required=False),
              Param("f_i", "number", "input factor", unit="1", minimum=0.0, required=False),
              Param("management", "string", "grassland management level of Table 6.2", required=False,
                    options=("nominally_managed", "moderately_degraded", "severely_degraded", "improved")),
              Param("input_level", "string", "grassland input level of Table 6.2 (improved grassland)",
                    required=False, options=("medium", "high")),
          )),
)

IPCC_TIER1_SPEC = MethodSpec(
    "ipcc_tier1",
    "IPCC 2006 Tier 1 stocks per land-use category: AGB (Table 4.7 / 6.4), R (Table 4.4), CF (Table 4.3), "
    "optional dead wood and litter, SOC = SOC_ref × F_LU × F_MG × F_I (Table 2.3, 6.2)",
    (
        _ALLOW_UNCONFIRMED,
        Param("categories", "mapping", "parameters per IPCC land-use category present in the legend",
              key_type="category", values=Param("stratum", "object", "one category", fields=_STRATUM_FIELDS)),
        Param("classes", "mapping", "per land-cover class overrides of its category's parameters",
              key_type="lucode", default={},
              values=Param("stratum", "object", "one class", fields=_STRATUM_FIELDS)),
        _uncertainty({"area": "each class area", "agb": "above-ground biomass", "root_to_shoot": "R",
                      "carbon_fraction": "the carbon fraction", "dead_organic_matter": "dead wood and litter",
                      "soc_ref": "SOC_ref", "f_lu": "F_LU", "f_mg": "F_MG", "f_i": "F_I"}),
    ),
)

VOLUME_BCEF_SPEC = MethodSpec(
    "volume_bcef",
    "Stock from growing-stock volume: V × BCEF × (1 + R) × CF (IPCC 2006 Vol 4 Eq 2.8), the inventory method "
    "of Chinese forestry standards",
    (
        _ALLOW_UNCONFIRMED,
        Param("classes", "mapping", "forest classes and their species parameters", key_type="lucode",
              values=Param("species", "object", "one forest class", fields=(
                  Param("species", "string", "species or forest type, for people", required=False),
                  Param("volume_m3_per_ha", "number", "growing-stock volume when the parcel gives none",
                        unit="m3/ha", minimum=0.0, required=False),
                  Param("bcef_t_dm_per_m3", "number", "BCEF_S", unit="t d.m./m3", minimum=0.0, required=False),
                  Param("bcef_group", "string", "Table 4.5 group used when bcef_t_dm_per_m3 is absent",
                        required=False, options=("temperate_hardwoods", "temperate_pines", "boreal_pines")),
                  Param("root_to_shoot", "number", "R", unit="t d.m./t d.m.", minimum=0.0, required=False),
                  Param("ecological_zone", "string", "Table 4.4 zone used when root_to_shoot is absent",
                        required=False),
                  Param("forest_type", "string", "Table 4.4 temperate split", required=False,
                        options=("conifers", "quercus", "eucalyptus", "other_broadleaf")),
                  Param("carbon_fraction", "number", "default 0.47 (Table 4.3)", unit="t C/t d.m.",
                        minimum=0.0, maximum=1.0, required=False),
                  Param("soil_t_c_per_ha", "number", "soil carbon if reported (0 unless given)", unit="t C/ha",
                        minimum=0.0, required=False),
                  Param("dead_organic_matter_t_c_per_ha", "number", "dead wood + litter (0 unless given)",
                        unit="t C/ha", minimum=0.0, required=False),
              ))),
        Param("zero_stock_classes", "list", "classes counted as holding no carbon (water, roads, bare land)",
              values=Param("lucode", "integer", "land-cover code"), default=[]),
        _uncertainty({"area": "each class area", "volume": "growing-stock volume", "bcef": "BCEF",
                      "root_to_shoot": "R", "carbon_fraction": "the carbon fraction",
                      "soil": "soil carbon", "dead_organic_matter": "dead organic matter"}),
    ),
)


def _check_pool_rows(normalised: dict, problems: dict[str, str]) -> None:
    seen: dict[int, int] = {}
    for i, row in enumerate(normalised.get("pools") or []):
        if not isinstance(row, dict) or row.get("lucode") is None:
            continue
        if row["lucode"] in seen:
            problems[f"pools[{i}].lucode"] = TranslatableMessage(
                gettext_noop("lucode %(lucode)s repeats pools[%(index)s]"), lucode=row["lucode"],
                index=seen[row["lucode"]])
        seen.setdefault(row["lucode"], i)
    if normalised.get("pools") == []:
        problems["pools"] = TranslatableMessage(gettext_noop("expected at least one row"))
    if isinstance(normalised.get("pools"), list):
        normalised["pools"] = sorted(
            normalised["pools"], key=lambda r: (r.get("lucode") is None, r.get("lucode") or 0)
            if isinstance(r, dict) else (True, 0))


def _check_volume_classes(normalised: dict, problems: dict[str, str]) -> None:
    classes = normalised.get("classes") or {}
    for code, cls in classes.items():
        if not isinstance(cls, dict):
            continue
        if "bcef_t_dm_per_m3" not in cls and "bcef_group" not in cls:
            problems[f"classes.{code}.bcef_t_dm_per_m3"] = TranslatableMessage(
                gettext_noop("required (or bcef_group for Table 4.5)"))
        if "root_to_shoot" not in cls and "ecological_zone" not in cls:
            problems[f"classes.{code}.root_to_shoot"] = TranslatableMessage(
                gettext_noop("required (or ecological_zone for Table 4.4)"))
    for i, code in enumerate(normalised.get("zero_stock_classes") or []):
        if code is not None and str(code) in classes:
            problems[f"zero_stock_classes[{i}]"] = TranslatableMessage(
                gettext_noop("class %(lucode)s is also configured in classes"), lucode=code)
    if isinstance(normalised.get("zero_stock_classes"), list):
        normalised["zero_stock_classes"] = sorted({c for c in normalised["zero_stock_classes"] if c is not None})


METHOD_SPECS: dict[str, MethodSpec] = {
    "pool_table": POOL_TABLE_SPEC,
    "ipcc_tier1": IPCC_TIER1_SPEC,
    "volume_bcef": VOLUME_BCEF_SPEC,
}
_CHECKS = {"pool_table": _check_pool_rows, "volume_bcef": _check_volume_classes}


def validate_method_parameters(kind: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised parameters for `kind`, or MethodParameterError naming every bad parameter."""
    if kind not in METHOD_SPECS:
        raise MethodParameterError(kind, {"kind": TranslatableMessage(
            gettext_noop("unknown method kind; expected one of %(kinds)s"), kinds=str(sorted(METHOD_SPECS)))})
    if not isinstance(parameters, Mapping):
        raise MethodParameterError(kind, {"parameters": TranslatableMessage(
            gettext_noop("expected an object, got %(got)s"), got=type(parameters).__name__)})
    problems: dict[str, str] = {}
    normalised = _validate_fields(METHOD_SPECS[kind].parameters, parameters, "", problems)
    if kind in _CHECKS:
        _CHECKS[kind](normalised, problems)
    if problems:
        raise MethodParameterError(kind, problems)
    return normalised


def canonical_json(kind: str, parameters: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of {"kind", "parameters"} after normalisation."""
    return rfc8785.dumps({"kind": kind, "parameters": validate_method_parameters(kind, parameters)})


def method_parameters_hash(kind: str, parameters: Mapping[str, Any]) -> str:
    """sha256 hex of `canonical_json(kind, parameters)`."""
    return hashlib.sha256(canonical_json(kind, parameters)).hexdigest()


def method_spec(kind: str) -> dict[str, Any]:
    """The JSON-able declaration of a method kind's parameters."""
    return METHOD_SPECS[kind].describe()
