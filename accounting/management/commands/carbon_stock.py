"""`python manage.py carbon_stock`: the analyst's command. No database: the same engine the service runs."""

import csv
import io
import json
import os
import sys
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import shapely
from django.core.management.base import BaseCommand, CommandError
from pyproj import CRS, Transformer
from shapely.geometry import mapping, shape

from accounting.engine import AREA_BASES, ELLIPSOIDAL, RunInputs, account_parcels, whole_raster_geometry
from accounting.methods.errors import MethodError
from accounting.methods.pool_table import pool_table_read
from accounting.methods.valuation import ValuationTerms
from geo.legends import BUILTIN_LEGENDS, LegendError, builtin_legend, legend_from_upload
from geo.zonal import ZonalError

CSV_FIELDS = ["parcel", "area_ha", "nodata_ha", "outside_ha", "stock_tC", "stock_tCO2e", "stock_ci95_low_tC",
              "stock_ci95_high_tC", "c_above_tC", "c_below_tC", "c_soil_tC", "c_dead_tC", "alt_stock_tC",
              "change_tC", "annual_change_tCO2e_per_yr", "npv", "currency"]


def _decimal(text: str, name: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CommandError(f"{name} must be a number; got {text!r}") from None


class Command(BaseCommand):
    help = ("Carbon stock (and change, and value) of parcels or of a whole land-cover raster, with an InVEST pool "
            "table or a method JSON. Needs no database.")
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--raster", required=True, help="baseline land-cover GeoTIFF")
        method = parser.add_mutually_exclusive_group(required=True)
        method.add_argument("--pools", help="InVEST carbon pool table (lucode, c_above, c_below, c_soil, c_dead)")
        method.add_argument("--method", help='method JSON: {"kind": "...", "parameters": {...}}')
        parser.add_argument("--alt-raster", help="alternate (later) land-cover GeoTIFF")
        parser.add_argument("--years", nargs=2, type=int, metavar=("BASE_YEAR", "ALT_YEAR"))
        parser.add_argument("--parcels", help="GeoJSON FeatureCollection; default: the whole raster")
        parser.add_argument("--parcels-crs", help="CRS of the parcels' coordinates (default WGS84 lon/lat)")
        parser.add_argument("--legend", help=f"legend for IPCC categories: {', '.join(sorted(BUILTIN_LEGENDS))} "
                                             "or a JSON/CSV file (needed by ipcc_tier1)")
        parser.add_argument("--price", help="price per t C (InVEST's convention), e.g. 43")
        parser.add_argument("--discount-rate", default="0", help="percent per year, e.g. 7")
        parser.add_argument("--price-change", default="0", help="percent per year")
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--uncertainty", choices=["approach1", "approach2"], default="approach1")
        parser.add_argument("--seed", type=int, default=20260101, help="Monte Carlo seed (approach2)")
        parser.add_argument("--area-basis", choices=AREA_BASES, default=ELLIPSOIDAL,
                            help="ellipsoidal hectares (default) or the projected grid's hectares, as InVEST counts")
        parser.add_argument("--format", choices=["json", "csv", "geojson"], default="json")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, **o):
        if bool(o["alt_raster"]) != bool(o["years"]):
            raise CommandError("--alt-raster and --years go together")
        for name in ("raster", "alt_raster", "pools", "method", "parcels"):
            if o[name] and not Path(o[name]).is_file():
                raise CommandError(f"--{name.replace('_', '-')}: no such file: {o[name]}")
        kind, parameters = self._method(o)
        geometries, labels, attributes, crs = self._parcels(o)
        # A parcel's Monte Carlo draws are seeded by its county and code, as the service seeds them.
        keys = None if attributes is None else [
            f"{a['county']}/{a['code']}" if "county" in a and "code" in a else str(label)
            for a, label in zip(attributes, labels, strict=True)]
        valuation = None
        if o["price"] is not None:
            try:
                valuation = ValuationTerms(_decimal(o["price"], "--price"), o["currency"],
                                           _decimal(o["discount_rate"], "--discount-rate"),
                                           _decimal(o["price_change"], "--price-change"))
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        ipcc = None
        if o["legend"]:
            try:
                legend = builtin_legend(o["legend"]) if o["legend"] in BUILTIN_LEGENDS else \
                    legend_from_upload(Path(o["legend"]).read_text(encoding="utf-8-sig"))
            except (LegendError, OSError) as exc:
                raise CommandError(f"--legend: {exc}") from None
            ipcc = legend.ipcc_category_by_class()

        def progress(done: int, total: int) -> None:
            self.stderr.write(f"\rzonal: {done}/{total} strips", ending="" if done < total else "\n")

        try:
            outcome = account_parcels(RunInputs(
                raster_path=o["raster"], alt_raster_path=o["alt_raster"], years=tuple(o["years"]) if o["years"]
                else None, geometries=geometries, geometries_crs=crs, labels=labels, attributes=attributes,
                method_kind=kind, method_parameters=parameters, ipcc_category_by_class=ipcc, valuation=valuation,
                uncertainty_approach=o["uncertainty"], seed=o["seed"], area_basis=o["area_basis"], parcel_keys=keys,
            ), on_progress=progress if sys.stderr.isatty() or o["output"] else None)
        except (MethodError, ZonalError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        text = self._render(o["format"], outcome, geometries, crs, o)
        self._write(text, o["output"])

    def _method(self, o):
        try:
            if o["pools"]:
                with open(o["pools"], encoding="utf-8-sig") as handle:
                    return "pool_table", {"pools": pool_table_read(handle).as_parameters()}
            data = json.loads(Path(o["method"]).read_text(encoding="utf-8-sig"))
        except MethodError as exc:
            raise CommandError(f"--pools: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"--method: not JSON: {exc}") from None
        if not isinstance(data, dict) or "kind" not in data or not isinstance(data.get("parameters"), dict):
            raise CommandError('--method: expected {"kind": "...", "parameters": {...}}')
        return data["kind"], data["parameters"]

    def _parcels(self, o):
        if not o["parcels"]:
            return [None], ["whole raster"], None, o["parcels_crs"] or "EPSG:4326"
        try:
            data = json.loads(Path(o["parcels"]).read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise CommandError(f"--parcels: not JSON: {exc}") from None
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, list) or not features:
            raise CommandError("--parcels: expected a GeoJSON FeatureCollection with features")
        geometries, labels, attributes, bad = [], [], [], []
        for index, feature in enumerate(features):
            try:
                geometry = shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
                bad.append(f"feature {index}: geometry cannot be read ({exc})")
                continue
            if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
                reason = shapely.is_valid_reason(geometry) if geometry.geom_type in ("Polygon", "MultiPolygon") \
                    else f"a {geometry.geom_type}, not a polygon"
                bad.append(f"feature {index}: {reason}")
                continue
            properties = feature.get("properties") or {}
            geometries.append(geometry)
            labels.append(properties.get("code", properties.get("id", feature.get("id", index))))
            attributes.append(properties)
        if bad:
            raise CommandError("--parcels: " + "; ".join(bad))
        return geometries, labels, attributes, o["parcels_crs"] or "EPSG:4326"

    def _render(self, fmt, outcome, geometries, crs, o) -> str:
        parcels = [{"parcel": p.label, **p.figures} for p in outcome.parcels]
        if fmt == "json":
            return json.dumps({"method_parameters_sha256": outcome.method_parameters_sha256,
                               "totals": outcome.totals, "parcels": parcels}, indent=2, ensure_ascii=False) + "\n"
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
            writer.writeheader()
            for p in parcels:
                pools = p["stock_by_pool_tC"]
                writer.writerow({
                    "parcel": p["parcel"], "area_ha": p["area_ha"], "nodata_ha": p["nodata_ha"],
                    "outside_ha": p["outside_ha"], "stock_tC": p["stock_tC"], "stock_tCO2e": p["stock_tCO2e"],
                    "stock_ci95_low_tC": p["stock_ci95_tC"][0], "stock_ci95_high_tC": p["stock_ci95_tC"][1],
                    "c_above_tC": pools["c_above"], "c_below_tC": pools["c_below"], "c_soil_tC": pools["c_soil"],
                    "c_dead_tC": pools["c_dead"], "alt_stock_tC": p.get("alt_stock_tC"),
                    "change_tC": p.get("change_tC"), "annual_change_tCO2e_per_yr": p.get("annual_change_tCO2e_per_yr"),
                    "npv": (p.get("npv") or {}).get("amount"), "currency": (p.get("npv") or {}).get("currency"),
                })
            return out.getvalue()
        # GeoJSON (RFC 7946): WGS84 longitude/latitude.
        if geometries == [None]:
            whole, crs = whole_raster_geometry(o["raster"])
            geometries = [whole]
        transformer = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)
        features = []
        for geometry, p in zip(geometries, parcels, strict=True):
            lonlat = shapely.transform(geometry, lambda xy: _stack(transformer.transform(xy[:, 0], xy[:, 1])))
            features.append({"type": "Feature", "geometry": mapping(lonlat), "properties": p})
        return json.dumps({"type": "FeatureCollection", "totals": outcome.totals, "features": features},
                          ensure_ascii=False) + "\n"

    def _write(self, text: str, output: str | None) -> None:
        if not output:
            self.stdout.write(text, ending="")
            return
        target = Path(output)
        # Write beside the target and rename, so a failure never leaves half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stderr.write(f"wrote {target}")


def _stack(xy):
    return np.column_stack(xy)
