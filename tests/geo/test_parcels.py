"""Parcel import: CRSs, geodesic areas checked against closed forms, and every refusal all-or-nothing."""

import json
import math

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from geo.models import Parcel

pytestmark = pytest.mark.django_db

# WGS84 ellipsoid (NIMA TR8350.2): semi-major axis and flattening.
A_M = 6_378_137.0
F = 1 / 298.257223563


def ellipsoidal_quadrangle_ha(lon1, lat1, lon2, lat2) -> float:
    """Area between two meridians and two parallels on the WGS84 ellipsoid (closed form, via the authalic
    function q(φ) = sinφ/(1 − e² sin²φ) + ln((1 + e sinφ)/(1 − e sinφ))/(2e); area = b²/2 · Δλ · Δq)."""
    e2 = F * (2 - F)
    e = math.sqrt(e2)
    b = A_M * (1 - F)

    def q(lat):
        s = math.sin(math.radians(lat))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return b * b / 2 * math.radians(lon2 - lon1) * (q(lat2) - q(lat1)) / 10_000


def box(lon1, lat1, lon2, lat2):
    return {"type": "Polygon", "coordinates": [[[lon1, lat1], [lon2, lat1], [lon2, lat2], [lon1, lat2], [lon1, lat1]]]}


def feature(code, geometry, county="510727", **properties):
    return {"type": "Feature", "geometry": geometry, "properties": {"code": code, "county": county, **properties}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


@pytest.fixture
def bureau(api_user):
    return api_user("bureau", county="510727")[1]


def post(client, data, crs=None):
    url = "/api/parcels/" + (f"?crs={crs}" if crs else "")
    return client.post(url, data, format="json")


def test_import_wgs84_parcels_with_geodesic_area(bureau):
    data = collection(
        feature("LQ-510727-0001", box(104.50, 32.40, 104.51, 32.41), name="Guanba", origin="natural",
                age_class="mature"),
        feature("LQ-510727-0002", box(104.51, 32.40, 104.52, 32.41)),
    )
    response = post(bureau, data)
    assert response.status_code == 201, response.content
    first = Parcel.objects.get(code="LQ-510727-0001")
    # Geodesic edges and parallels differ by under 1e-5 relative over 0.01°.
    assert first.area_ha == pytest.approx(ellipsoidal_quadrangle_ha(104.50, 32.40, 104.51, 32.41), rel=1e-5)
    assert first.attributes == {"origin": "natural", "age_class": "mature"}
    assert first.name == "Guanba"
    assert (first.min_lon, first.min_lat, first.max_lon, first.max_lat) == (104.50, 32.40, 104.51, 32.41)
    assert response.json()["features"][0]["properties"]["area_ha"] == first.area_ha


def test_gauss_kruger_zone_coordinates(bureau):
    # EPSG:4544 is CGCS2000 / 3-degree Gauss-Kruger CM 105E. On the central meridian the scale factor is 1,
    # so a 1,000 m x 1,000 m square there is 100 ha on the ellipsoid (the scale 1 + x²/2R² at 500 m off the
    # meridian differs from 1 by 3e-9).
    square = {"type": "Polygon", "coordinates": [[[499_500, 3_585_000], [500_500, 3_585_000],
                                                  [500_500, 3_586_000], [499_500, 3_586_000],
                                                  [499_500, 3_585_000]]]}
    response = post(bureau, collection(feature("GK-1", square)), crs="EPSG:4544")
    assert response.status_code == 201, response.content
    parcel = Parcel.objects.get(code="GK-1")
    assert parcel.area_ha == pytest.approx(100.0, rel=1e-6)
    assert parcel.source_crs == "EPSG:4544"
    # Stored in WGS84: the square straddles 105°E near 32.4°N.
    assert parcel.min_lon < 105 < parcel.max_lon
    assert 32.38 < parcel.min_lat < parcel.max_lat < 32.40


def test_gauss_kruger_zone_with_zone_prefix(bureau):
    # EPSG:4523 is the same grid with the zone number 35 prefixed to the false easting (35,500,000 m).
    square = {"type": "Polygon", "coordinates": [[[35_499_500, 3_585_000], [35_500_500, 3_585_000],
                                                  [35_500_500, 3_586_000], [35_499_500, 3_586_000],
                                                  [35_499_500, 3_585_000]]]}
    response = post(bureau, collection(feature("GK-2", square)), crs="EPSG:4523")
    assert response.status_code == 201, response.content
    assert Parcel.objects.get(code="GK-2").area_ha == pytest.approx(100.0, rel=1e-6)


def test_cgcs2000_geographic(bureau):
    response = post(bureau, collection(feature("C-1", box(104.5, 32.4, 104.51, 32.41))), crs="EPSG:4490")
    assert response.status_code == 201, response.content
    assert Parcel.objects.get(code="C-1").area_ha == pytest.approx(
        ellipsoidal_quadrangle_ha(104.5, 32.4, 104.51, 32.41), rel=1e-5)


def test_every_bad_feature_is_named_and_nothing_is_stored(bureau):
    bowtie = {"type": "Polygon", "coordinates": [[[104.5, 32.4], [104.51, 32.41], [104.51, 32.4], [104.5, 32.41],
                                                  [104.5, 32.4]]]}
    data = collection(
        feature("OK-1", box(104.5, 32.4, 104.51, 32.41)),
        feature("BAD-1", bowtie),
        feature("BAD-2", {"type": "Point", "coordinates": [104.5, 32.4]}),
        feature("BAD-3", box(32.4, 104.5, 32.41, 104.51)),
        feature("", box(104.5, 32.4, 104.51, 32.41)),
        feature("BAD-5", box(104.5, 32.4, 104.51, 32.41), county="5107"),
        feature("BAD-6", {"type": "Polygon", "coordinates": []}),
    )
    response = post(bureau, data)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["index"] for e in errors] == [1, 2, 3, 4, 5, 6]
    assert [e["pointer"] for e in errors] == ["#/features/1/geometry", "#/features/2/geometry",
                                              "#/features/3/geometry", "#/features/4/properties/code",
                                              "#/features/5/properties/county", "#/features/6/geometry"]
    assert errors[0]["detail"] == "invalid geometry: Self-intersection[104.505 32.405]"
    assert errors[1]["detail"] == "geometry must be a Polygon or MultiPolygon; got 'Point'"
    assert errors[2]["detail"].startswith("coordinates out of range: longitude must lie in [-180, 180]")
    assert errors[3]["detail"] == "property 'code' (the parcel number) is missing"
    assert errors[4]["detail"] == "property 'county': county code must be 6 digits (GB/T 2260), got '5107'"
    assert errors[5]["detail"] == "geometry is empty"
    assert response.json()["detail"].startswith("6 bad feature(s), nothing imported: feature 1: invalid geometry")
    assert Parcel.objects.count() == 0


def test_duplicate_code_in_county_is_409(bureau):
    assert post(bureau, collection(feature("D-1", box(104.5, 32.4, 104.51, 32.41)))).status_code == 201
    response = post(bureau, collection(feature("D-2", box(104.6, 32.4, 104.61, 32.41)),
                                       feature("D-1", box(104.7, 32.4, 104.71, 32.41))))
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"pointer": "#/features/1/properties/code", "index": 1, "code": "D-1",
         "detail": "parcel code 'D-1' already exists in county 510727"}]
    assert list(Parcel.objects.values_list("code", flat=True)) == ["D-1"]


def test_duplicate_code_within_one_file_is_refused(bureau):
    response = post(bureau, collection(feature("E-1", box(104.5, 32.4, 104.51, 32.41)),
                                       feature("E-1", box(104.6, 32.4, 104.61, 32.41))))
    assert response.status_code == 422
    assert response.json()["errors"][0]["detail"] == "code 'E-1' appears twice in county 510727 (also feature 0)"
    assert Parcel.objects.count() == 0


def test_bureau_cannot_import_into_another_county(bureau):
    response = post(bureau, collection(feature("F-1", box(104.5, 32.4, 104.51, 32.41), county="510726")))
    assert response.status_code == 403
    assert response.json()["detail"] == "a bureau of county 510727 cannot import parcels of county 510726"
    assert Parcel.objects.count() == 0


def test_other_roles_cannot_import(api_user):
    _, bank = api_user("bank")
    response = post(bank, collection(feature("G-1", box(104.5, 32.4, 104.51, 32.41))))
    assert response.status_code == 403
    assert Parcel.objects.count() == 0


def test_not_a_feature_collection(bureau):
    response = post(bureau, {"type": "Feature"})
    assert response.status_code == 422
    assert response.json()["detail"] == ('1 bad feature(s), nothing imported: feature None: expected a GeoJSON object '
                                         'with "type": "FeatureCollection"')


def test_unknown_crs(bureau):
    response = post(bureau, collection(feature("H-1", box(104.5, 32.4, 104.51, 32.41))), crs="EPSG:999999")
    assert response.status_code == 422
    assert "unknown CRS 'EPSG:999999'" in response.json()["detail"]


def test_list_by_bbox_and_county_and_read_one(bureau, api_user):
    post(bureau, collection(feature("K-1", box(104.50, 32.40, 104.51, 32.41)),
                            feature("K-2", box(104.60, 32.50, 104.61, 32.51))))
    _, bank = api_user("bank")
    listed = bank.get("/api/parcels/?bbox=104.505,32.405,104.55,32.45").json()
    assert listed["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in listed["features"]] == ["K-1"]
    assert bank.get("/api/parcels/?county=510726").json()["features"] == []
    assert len(bank.get("/api/parcels/?county=510727").json()["features"]) == 2
    bad = bank.get("/api/parcels/?bbox=1,2,3")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"pointer": "#/bbox",
                                     "detail": "bbox must be min_lon,min_lat,max_lon,max_lat with min <= max"}]
    parcel = Parcel.objects.get(code="K-2")
    one = bank.get(f"/api/parcels/{parcel.id}/")
    assert one["Content-Type"] == "application/geo+json"
    assert one.json()["geometry"]["type"] == "Polygon"
    assert one.json()["properties"]["code"] == "K-2"


def test_import_parcels_command(tmp_path, capsys):
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps(collection(feature("M-1", box(104.5, 32.4, 104.51, 32.41)))))
    call_command("import_parcels", str(path))
    assert capsys.readouterr().out.startswith("imported 1 parcels, ")
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(collection(feature("M-2", box(104.5, 32.4, 104.51, 32.41)),
                                         feature("M-3", {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}))))
    expected = r"nothing imported; 1 bad feature\(s\):\n  feature 1 \(M-3\): geometry must"
    with pytest.raises(CommandError, match=expected):
        call_command("import_parcels", str(bad))
    assert list(Parcel.objects.values_list("code", flat=True)) == ["M-1"]


def test_a_geometry_without_coordinates_is_refused_by_name():
    """Found by schemathesis: {"type": "Polygon"} with no coordinates was a 500 (KeyError in shapely)."""
    from geo.errors import ParcelError
    from geo.parcels import parse_feature_collection

    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon"}, "properties": {"code": "A", "county": "510727"}}]}
    with pytest.raises(ParcelError) as refused:
        parse_feature_collection(collection)
    assert [str(p["detail"]) for p in refused.value.problems] == ["geometry has no coordinates"]
