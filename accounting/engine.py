"""The run engine: zonal class areas per parcel, then a carbon method per parcel, then totals.

Pure of Django: paths, geometries and plain values in, JSON-able figures out. The service (a Celery task) and
the `carbon_stock` command call the same function, so an analyst's numbers and the registry's are one.

Each raster is opened once per run (`geo.zonal_files.open_land_cover`), after its bytes are checked against the
sha256 recorded for them when one is given; its extent, grid and strips are all read through that one handle.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from accounting.methods.parcel import CarbonTotals, ParcelCarbon, carbon_method, parcel_carbon, parcels_total
from accounting.methods.uncertainty import parcel_seed
from accounting.methods.units import CO2_PER_C
from accounting.methods.valuation import Money, ValuationTerms
from geo.area import M2_PER_HA
from geo.zonal import ClassAreas
from geo.zonal_files import LandCoverFile, open_land_cover, zonal_class_areas, zonal_transitions

ELLIPSOIDAL, GRID = "ellipsoidal", "grid"
AREA_BASES = (ELLIPSOIDAL, GRID)


@dataclass(frozen=True)
class RunInputs:
    """Everything one accounting run reads. `geometries` are shapely geometries or GeoJSON dicts in
    `geometries_crs`; None as the only geometry means the whole raster.

    `area_basis`: "ellipsoidal" (default; hectares on the ellipsoid, DESIGN.md) or "grid" (hectares of the
    projected grid, pixel area from the transform, as InVEST and exactextract count; for InVEST parity).

    `raster_sha256`, `alt_raster_sha256`: the hex sha256 each raster file must have (for a stored raster, that
    of its normalised copy, recorded at ingest); the run refuses a file that no longer has it. None: unchecked.

    `parcel_keys`: each parcel's identity (e.g. "510727/F-1"), from which with `seed` its Monte Carlo draws are
    seeded (`accounting.methods.uncertainty.parcel_seed`), so that a parcel's interval does not depend on
    which other parcels share the run or their order. Default: each label as text.
    """

    raster_path: Any
    geometries: Sequence[BaseGeometry | Mapping | None]
    method_kind: str
    method_parameters: Mapping[str, Any]
    geometries_crs: Any = "EPSG:4326"
    labels: Sequence[Any] | None = None
    attributes: Sequence[Mapping[str, Any]] | None = None
    alt_raster_path: Any = None
    ipcc_category_by_class: Mapping[int, str] | None = None
    years: tuple[int, int] | None = None
    valuation: ValuationTerms | None = None
    uncertainty_approach: str = "approach1"
    seed: int = 20260101
    area_basis: str = ELLIPSOIDAL
    raster_sha256: str | None = None
    alt_raster_sha256: str | None = None
    parcel_keys: Sequence[str] | None = None


@dataclass(frozen=True)
class ParcelOutcome:
    label: Any
    figures: dict


@dataclass(frozen=True)
class RunOutcome:
    parcels: list[ParcelOutcome]
    totals: dict
    method_parameters_sha256: str
    carbon: list[ParcelCarbon] = field(repr=False, default_factory=list)


def _extent(raster: LandCoverFile) -> tuple[BaseGeometry, str]:
    return box(*raster.bounds), raster.crs.to_wkt()


def whole_raster_geometry(raster_path) -> tuple[BaseGeometry, Any]:
    """The raster's extent as a polygon in its own CRS (WKT): the default 'parcel' when none are given."""
    with open_land_cover(raster_path) as raster:
        return _extent(raster)


def _grid_cell_ha(raster: LandCoverFile) -> float:
    if raster.crs.is_geographic:
        raise ValueError("area basis 'grid' needs a projected raster; a degree is not a fixed area")
    unit_m = raster.crs.linear_units_factor[1]
    t = raster.transform
    return abs(t.a * t.e) * unit_m * unit_m / M2_PER_HA


def _money(value: Money | None) -> dict | None:
    return None if value is None else {"amount": str(value.amount), "currency": value.currency}


def _interval(interval) -> list[float] | None:
    return None if interval is None else [interval.lower_t_c, interval.upper_t_c]


def _codes(mapping: Mapping[int, float]) -> dict[str, float]:
    return {str(code): value for code, value in sorted(mapping.items())}


def _change_and_value(*, alt_stock_t_c, alt_interval, alt_by_pool, years, change_t_c, change_interval,
                      stock_value, alt_stock_value, npv) -> dict:
    """The second-epoch and money fields, the same for one parcel and for a run's totals."""
    out = {}
    if alt_stock_t_c is not None:
        out.update({
            "alt_stock_tC": alt_stock_t_c,
            "alt_stock_tCO2e": alt_stock_t_c * CO2_PER_C,
            "alt_stock_ci95_tC": _interval(alt_interval),
            "alt_stock_by_pool_tC": dict(alt_by_pool),
            "years": years,
            "change_tC": change_t_c,
            "change_tCO2e": change_t_c * CO2_PER_C,
            "change_ci95_tC": _interval(change_interval),
            "annual_change_tC_per_yr": change_t_c / years,
            "annual_change_tCO2e_per_yr": change_t_c / years * CO2_PER_C,
        })
    for name, money in (("stock_value", stock_value), ("alt_stock_value", alt_stock_value), ("npv", npv)):
        if money is not None:
            out[name] = _money(money)
    return out


def _figures(zonal: ClassAreas, alt_zonal: ClassAreas | None, carbon: ParcelCarbon) -> dict:
    base, alt, change = carbon.baseline, carbon.alternate, carbon.change
    figures = {
        "area_ha": zonal.geodesic_area_ha,
        "class_area_ha": _codes(base.area_ha_by_class),
        "nodata_ha": zonal.nodata_ha,
        "outside_ha": zonal.outside_ha,
        "stock_tC": base.stock_t_c,
        "stock_tCO2e": base.stock_t_c * CO2_PER_C,
        "stock_ci95_tC": _interval(base.interval),
        "stock_by_pool_tC": dict(base.stock_t_c_by_pool),
        "uncertainty_approach": base.interval.approach,
        "uses_unconfirmed_defaults": carbon.uses_unconfirmed_defaults,
    }
    if alt is not None:
        figures["alt_class_area_ha"] = _codes(alt.area_ha_by_class)
        figures["alt_nodata_ha"] = alt_zonal.nodata_ha if alt_zonal else None
    figures.update(_change_and_value(
        alt_stock_t_c=alt.stock_t_c if alt else None, alt_interval=alt.interval if alt else None,
        alt_by_pool=alt.stock_t_c_by_pool if alt else None, years=change.years if change else None,
        change_t_c=change.change_t_c if change else None, change_interval=carbon.change_interval,
        stock_value=carbon.stock_value, alt_stock_value=carbon.alt_stock_value, npv=carbon.npv_of_change))
    return figures


def _totals(totals: CarbonTotals, zonal: Sequence[ClassAreas]) -> dict:
    out = {
        "parcel_count": totals.parcel_count,
        "area_ha": sum(z.geodesic_area_ha for z in zonal),
        "valid_area_ha": totals.area_ha,
        "class_area_ha": _codes(totals.area_ha_by_class),
        "stock_tC": totals.stock_t_c,
        "stock_tCO2e": totals.stock_co2e_t,
        "stock_ci95_tC": _interval(totals.interval),
        "stock_by_pool_tC": dict(totals.stock_t_c_by_pool),
    }
    out.update(_change_and_value(
        alt_stock_t_c=totals.alt_stock_t_c, alt_interval=totals.alt_interval,
        alt_by_pool=totals.alt_stock_t_c_by_pool, years=totals.years, change_t_c=totals.change_t_c,
        change_interval=totals.change_interval, stock_value=totals.stock_value,
        alt_stock_value=totals.alt_stock_value, npv=totals.npv_of_change))
    return out


def _as_geometry(item) -> BaseGeometry | None:
    if item is None or isinstance(item, BaseGeometry):
        return item
    return shape(item)


def _grid_areas(zonal: ClassAreas, cell_ha: float) -> dict[int, float]:
    return {code: count * cell_ha for code, count in zonal.pixel_count_by_class.items()}


def account_parcels(inputs: RunInputs, *, on_progress: Callable[[int, int], None] | None = None,
                    on_parcel: Callable[[int, int], None] | None = None) -> RunOutcome:
    """Run the method of `inputs` over every geometry; see RunInputs. Raises the methods' and zonal engine's
    errors (all ValueError) for unusable inputs; nothing is written anywhere.

    `on_progress(done, total)` is called as the zonal engine reads raster strips, `on_parcel(done, total)` after
    each parcel's carbon is computed (a run's service beats its heartbeat from both)."""
    if inputs.area_basis not in AREA_BASES:
        raise ValueError(f"area_basis must be one of {AREA_BASES}, got {inputs.area_basis!r}")
    if (inputs.alt_raster_path is None) != (inputs.years is None):
        raise ValueError("an alternate raster and years go together: give both or neither")
    method = carbon_method(inputs.method_kind, inputs.method_parameters)
    geometries, crs = [_as_geometry(g) for g in inputs.geometries], inputs.geometries_crs
    with ExitStack() as files:
        raster = files.enter_context(open_land_cover(inputs.raster_path, sha256=inputs.raster_sha256))
        if len(geometries) == 1 and geometries[0] is None:
            whole, crs = _extent(raster)
            geometries = [whole]
        if inputs.alt_raster_path is None:
            base_zonal = zonal_class_areas(raster, geometries, crs, on_progress=on_progress)
            alt_zonal, transitions = [None] * len(geometries), [None] * len(geometries)
        else:
            alt_raster = files.enter_context(open_land_cover(inputs.alt_raster_path,
                                                             sha256=inputs.alt_raster_sha256))
            pairs = zonal_transitions(raster, alt_raster, geometries, crs, on_progress=on_progress)
            base_zonal = [p.epoch_1 for p in pairs]
            alt_zonal = [p.epoch_2 for p in pairs]
            transitions = [p.transition_ha for p in pairs]
        cell_ha = _grid_cell_ha(raster) if inputs.area_basis == GRID else None
    labels = list(inputs.labels) if inputs.labels is not None else list(range(len(geometries)))
    keys = list(inputs.parcel_keys) if inputs.parcel_keys is not None else [str(label) for label in labels]
    if len(keys) != len(geometries):
        raise ValueError(f"{len(keys)} parcel keys for {len(geometries)} geometries, want one per geometry")
    attributes = list(inputs.attributes) if inputs.attributes is not None else [{}] * len(geometries)

    results: list[ParcelOutcome] = []
    carbon_results: list[ParcelCarbon] = []
    for index, zonal in enumerate(base_zonal):
        areas = zonal.area_ha_by_class if cell_ha is None else _grid_areas(zonal, cell_ha)
        alt = alt_zonal[index]
        alt_areas = None if alt is None else (alt.area_ha_by_class if cell_ha is None else _grid_areas(alt, cell_ha))
        # Transitions only where both epochs have the same valid land, so rows and columns can balance;
        # in grid hectares they are not kept (InVEST reports none).
        keep_transitions = (transitions[index] is not None and cell_ha is None
                            and abs(zonal.nodata_ha - alt.nodata_ha) <= 1e-9 * max(1.0, zonal.geodesic_area_ha))
        carbon = parcel_carbon(
            method, area_ha_by_class=areas, ipcc_category_by_class=inputs.ipcc_category_by_class,
            attributes=attributes[index], alt_area_ha_by_class=alt_areas,
            transition_ha=transitions[index] if keep_transitions else None,
            years=inputs.years, valuation=inputs.valuation, uncertainty=inputs.uncertainty_approach,
            seed=parcel_seed(inputs.seed, keys[index]),
        )
        carbon_results.append(carbon)
        figures = _figures(zonal, alt, carbon)
        figures["area_basis"] = inputs.area_basis
        results.append(ParcelOutcome(label=labels[index], figures=figures))
        if on_parcel:
            on_parcel(index + 1, len(base_zonal))
    totals = _totals(parcels_total(carbon_results), base_zonal)
    totals["area_basis"] = inputs.area_basis
    return RunOutcome(parcels=results, totals=totals, method_parameters_sha256=method.parameters_hash,
                      carbon=carbon_results)
