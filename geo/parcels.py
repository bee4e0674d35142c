"""Parcel files: GeoJSON FeatureCollections checked feature by feature and brought to WGS84. No Django."""

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geo.area import geodesic_area_ha
from geo.counties import CountyCodeError, validate_county_code
from geo.errors import ParcelError, gettext_noop, parcel_problem

WGS84 = CRS.from_epsg(4326)
RESERVED_PROPERTIES = ("code", "name", "county")
# What a parcel row holds (geo.models.Parcel), checked here so that a long value is a 422 naming the feature, not a
# database error.
CODE_MAX_CHARS = 64
NAME_MAX_CHARS = 255
# A CRS as an authority code or a WKT: a projected CRS's WKT2 is 2-5 thousand characters.
CRS_MAX_CHARS = 10_000


@dataclass(frozen=True)
class ParcelDraft:
    """A checked feature, ready to store: geometry in WGS84 lon/lat, area on the ellipsoid."""

    index: int
    code: str
    name: str
    county_code: str
    attributes: dict
    geometry_lonlat: BaseGeometry
    area_ha: float
    bounds_lonlat: tuple[float, float, float, float] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "bounds_lonlat", tuple(self.geometry_lonlat.bounds))

    @property
    def geometry_geojson(self) -> dict:
        return mapping(self.geometry_lonlat)


def parse_crs(crs: str | None) -> CRS:
    """`crs` as given ("EPSG:4490", "EPSG:4545", a WKT...), or WGS84 when None (RFC 7946)."""
    if not crs:
        return WGS84
    if len(crs) > CRS_MAX_CHARS:
        raise ParcelError([parcel_problem(None, None, gettext_noop("crs is %(length)s characters long; at most "
                                                                   "%(max_chars)s are accepted (an authority code such "
                                                                   "as EPSG:4545, or a WKT)"), parameter="crs",
                                          length=len(crs), max_chars=CRS_MAX_CHARS)], field="crs")
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise ParcelError([parcel_problem(None, None, gettext_noop("unknown CRS %(crs)s: %(reason)s"),
                                          parameter="crs", crs=repr(crs[:200]), reason=str(exc)[:500])],
                          field="crs") from None


def _to_lonlat(geometry: BaseGeometry, crs: CRS) -> BaseGeometry:
    if crs == WGS84:
        return geometry
    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)
    return shapely.transform(geometry, lambda xy: _stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _stack(xy):
    return np.column_stack(xy)


def parse_feature_collection(data, *, crs: str | None = None) -> list[ParcelDraft]:
    """Check every feature of a GeoJSON FeatureCollection and return drafts, or raise ParcelError listing
    every bad feature (index, code, and the reason: shapely's own for invalid geometry).

    Coordinates are WGS84 longitude/latitude unless `crs` names another CRS (e.g. EPSG:4490 CGCS2000 or its
    Gauss-Krüger zones EPSG:4491-4554), whose x/y order is easting/northing or longitude/latitude.
    """
    source_crs = parse_crs(crs)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ParcelError([parcel_problem(None, None, gettext_noop('expected a GeoJSON object with "type": '
                                                                   '"FeatureCollection"'), pointer="#/type")])
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise ParcelError([parcel_problem(None, None, gettext_noop("the FeatureCollection has no features"),
                                          pointer="#/features")])

    problems: list[dict] = []
    drafts: list[ParcelDraft] = []
    seen_codes: dict[tuple[str, str], int] = {}
    for index, feature in enumerate(features):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        code = properties.get("code")
        code = str(code).strip() if code is not None else ""

        def bad(detail: str, /, where: str = "", index=index, code=code, **params) -> None:
            problems.append(parcel_problem(index, code[:CODE_MAX_CHARS] or None, detail,
                                           pointer=f"#/features/{index}{where}", **params))

        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            bad(gettext_noop('not a GeoJSON Feature ("type": "Feature")'))
            continue
        if not code:
            bad(gettext_noop("property 'code' (the parcel number) is missing"), "/properties/code")
        elif len(code) > CODE_MAX_CHARS:
            bad(gettext_noop("property 'code' is %(length)s characters long; at most %(max_chars)s are accepted"),
                "/properties/code", length=len(code), max_chars=CODE_MAX_CHARS)
        name = str(properties.get("name") or "")
        if len(name) > NAME_MAX_CHARS:
            bad(gettext_noop("property 'name' is %(length)s characters long; at most %(max_chars)s are accepted"),
                "/properties/name", length=len(name), max_chars=NAME_MAX_CHARS)
        county = str(properties.get("county", "")).strip()
        try:
            validate_county_code(county)
        except CountyCodeError as exc:
            bad(gettext_noop("property 'county': %(reason)s"), "/properties/county", reason=exc.message)
        geometry = _check_geometry(feature.get("geometry"), source_crs,
                                   lambda detail, /, **params: bad(detail, "/geometry", **params))
        if geometry is None or not code or not county or len(code) > CODE_MAX_CHARS or len(name) > NAME_MAX_CHARS:
            continue
        key = (county, code)
        if key in seen_codes:
            bad(gettext_noop("code %(parcel_code)s appears twice in county %(county)s (also feature %(other)s)"),
                "/properties/code", parcel_code=repr(code), county=county, other=seen_codes[key])
            continue
        seen_codes[key] = index
        attributes = {k: v for k, v in properties.items() if k not in RESERVED_PROPERTIES}
        drafts.append(ParcelDraft(index=index, code=code, name=name, county_code=county,
                                  attributes=attributes, geometry_lonlat=geometry,
                                  area_ha=geodesic_area_ha(geometry)))
    if problems:
        raise ParcelError(problems)
    return drafts


def _check_geometry(raw, source_crs: CRS, bad) -> BaseGeometry | None:
    if not isinstance(raw, dict):
        bad(gettext_noop("geometry is missing"))
        return None
    if raw.get("type") not in ("Polygon", "MultiPolygon"):
        bad(gettext_noop("geometry must be a Polygon or MultiPolygon; got %(got)s"), got=repr(raw.get("type")))
        return None
    if "coordinates" not in raw:
        bad(gettext_noop("geometry has no coordinates"))
        return None
    try:
        geometry = shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        bad(gettext_noop("geometry cannot be read: %(reason)s"), reason=str(exc))
        return None
    if geometry.is_empty:
        bad(gettext_noop("geometry is empty"))
        return None
    coords = shapely.get_coordinates(geometry)
    if not all(math.isfinite(v) for v in coords.ravel().tolist()):
        bad(gettext_noop("geometry has non-finite coordinates"))
        return None
    if source_crs.is_geographic:
        lon_ok = ((coords[:, 0] >= -180) & (coords[:, 0] <= 180)).all()
        lat_ok = ((coords[:, 1] >= -90) & (coords[:, 1] <= 90)).all()
        if not (lon_ok and lat_ok):
            bad(gettext_noop("coordinates out of range: longitude must lie in [-180, 180] and latitude in [-90, 90] "
                             "(GeoJSON order is longitude, latitude; give crs for projected coordinates)"))
            return None
    if not geometry.is_valid:
        bad(gettext_noop("invalid geometry: %(reason)s"), reason=shapely.is_valid_reason(geometry))
        return None
    lonlat = _to_lonlat(geometry, source_crs)
    lon_lat = shapely.get_coordinates(lonlat)
    if not (abs(lon_lat[:, 0]) <= 180).all() or not (abs(lon_lat[:, 1]) <= 90).all() or \
            not all(math.isfinite(v) for v in lon_lat.ravel().tolist()):
        bad(gettext_noop("coordinates fall outside the valid area of %(crs)s"), crs=source_crs.to_string())
        return None
    return lonlat
