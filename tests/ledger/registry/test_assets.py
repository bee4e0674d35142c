"""Asset registration: serial codes, no double counting (overlap beyond the tolerance), confirmation, reads."""

import re

import pytest

from ledger.models import Asset, AssetSerialCounter, Entry
from tests.geo.test_parcels import ellipsoidal_quadrangle_ha
from tests.ledger.registry.conftest import COUNTY, box, evidence, ledger_state, make_parcel

pytestmark = pytest.mark.django_db


def register(client, parcel, holder, rights_type="forest_land_ownership", **extra):
    return client.post("/api/assets/", {"parcel": parcel.id, "rights_type": rights_type, "holder": holder.id,
                                        "evidence": evidence("certificate.pdf", "drone-2026-03.tif"), **extra},
                       format="json")


def test_register_gives_serial_codes_in_sequence_and_records_the_entry(roles):
    year = __import__("django.utils.timezone", fromlist=["now"]).now().year
    a = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    b = make_parcel("LQ-2", box(104.51, 32.40, 104.52, 32.41))  # shares an edge with LQ-1: no area in common
    first = register(roles.bureau, a, roles.holder)
    second = register(roles.bureau, b, roles.holder, rights_type="forest_tree_use")
    assert first.status_code == 201, first.json()
    assert second.status_code == 201, second.json()
    assert first.json()["code"] == f"{COUNTY}-{year}-000001"
    assert second.json()["code"] == f"{COUNTY}-{year}-000002"
    assert first.json()["status"] == "registered"
    assert first.json()["holder"] == {"id": roles.holder.id, "kind": "collective", "name": "Guanba village collective"}
    entry = Entry.objects.for_asset(first.json()["code"]).get()
    assert entry.kind == "asset.register"
    assert entry.payload["parcel"]["area_ha"] == f"{a.area_ha:.6f}"
    assert entry.payload["evidence"][1]["name"] == "drone-2026-03.tif"
    assert re.fullmatch(r"[0-9a-f]{64}", entry.payload["parcel"]["geometry_sha256"])
    assert {k: entry.payload[k] for k in ("asset", "county", "year", "sequence", "rights_type", "holder")} == {
        "asset": f"{COUNTY}-{year}-000001", "county": COUNTY, "year": year, "sequence": 1,
        "rights_type": "forest_land_ownership", "holder": roles.holder.id}
    assert first.json()["history"][0]["kind"] == "asset.register"
    assert AssetSerialCounter.objects.get(county_code=COUNTY, year=year).last_sequence == 2


def test_an_overlap_beyond_the_tolerance_is_409_naming_the_asset_and_area(roles):
    make = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    code = register(roles.bureau, make, roles.holder).json()["code"]
    overlapping = make_parcel("LQ-9", box(104.505, 32.405, 104.515, 32.415))
    want_ha = ellipsoidal_quadrangle_ha(104.505, 32.405, 104.51, 32.41)  # the common quarter, closed form
    before = ledger_state()
    response = register(roles.bureau, overlapping, roles.holder)
    assert response.status_code == 409
    body = response.json()
    assert body["overlaps"][0]["asset_code"] == code
    assert body["overlaps"][0]["overlap_ha"] == pytest.approx(want_ha, rel=1e-6)
    assert body["detail"] == f"parcel overlaps asset {code} by {want_ha:.2f} ha (tolerance 0.01 ha)"
    assert body["tolerance_ha"] == 0.01
    assert ledger_state() == before


def test_the_refusal_names_every_overlapping_asset(roles):
    codes = [register(roles.bureau, make_parcel(f"LQ-{i}", box(104.50 + i * 0.01, 32.40, 104.51 + i * 0.01, 32.41)),
                      roles.holder).json()["code"] for i in range(2)]
    spanning = make_parcel("LQ-X", box(104.505, 32.40, 104.515, 32.41))
    response = register(roles.bureau, spanning, roles.holder)
    assert response.status_code == 409
    assert [o["asset_code"] for o in response.json()["overlaps"]] == codes
    assert response.json()["detail"].count("parcel overlaps asset") == 2


def test_an_overlap_within_the_tolerance_is_allowed(roles, settings):
    register(roles.bureau, make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)), roles.holder)
    sliver = make_parcel("LQ-2", box(104.509999, 32.40, 104.52, 32.41))  # 0.000001° × 0.01°: about 0.01 ha
    sliver_ha = ellipsoidal_quadrangle_ha(104.509999, 32.40, 104.51, 32.41)
    assert 0.005 < sliver_ha < 0.02
    settings.ASSET_OVERLAP_TOLERANCE_HA = sliver_ha * 1.01
    assert register(roles.bureau, sliver, roles.holder).status_code == 201
    again = make_parcel("LQ-3", box(104.509999, 32.40, 104.53, 32.41))
    settings.ASSET_OVERLAP_TOLERANCE_HA = sliver_ha * 0.99
    response = register(roles.bureau, again, roles.holder)
    assert response.status_code == 409
    assert response.json()["overlaps"][0]["asset_code"].endswith("000001")


def test_the_same_parcel_cannot_be_registered_twice(roles):
    parcel = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    assert register(roles.bureau, parcel, roles.holder).status_code == 201
    response = register(roles.bureau, parcel, roles.holder)
    assert response.status_code == 409
    assert response.json()["overlaps"][0]["overlap_ha"] == pytest.approx(parcel.area_ha, rel=1e-6)


def test_a_refused_registration_uses_no_sequence_number(roles):
    year = __import__("django.utils.timezone", fromlist=["now"]).now().year
    parcel = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    register(roles.bureau, parcel, roles.holder)
    assert register(roles.bureau, parcel, roles.holder).status_code == 409
    other = make_parcel("LQ-2", box(104.60, 32.40, 104.61, 32.41))
    assert register(roles.bureau, other, roles.holder).json()["code"] == f"{COUNTY}-{year}-000002"


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"rights_type": "mineral_rights"}, 400, "rights_type"),
    ({"evidence": [{"name": "x", "sha256": "abc"}]}, 400, "evidence"),
    ({"holder": 999999}, 422, None),
    ({"parcel": 999999}, 422, None),
])
def test_bad_registrations_change_nothing(roles, change, status, field):
    parcel = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    body = {"parcel": parcel.id, "rights_type": "forest_land_use", "holder": roles.holder.id,
            "evidence": evidence(), **change}
    before = ledger_state()
    response = roles.bureau.post("/api/assets/", body, format="json")
    assert response.status_code == status, response.json()
    if field:
        assert response.json()["errors"][0]["pointer"].startswith(f"#/{field}")
    assert ledger_state() == before


def test_a_bank_cannot_be_the_holder(roles):
    parcel = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    response = register(roles.bureau, parcel, roles.bank_party)
    assert response.status_code == 422 and "not a rights holder" in response.json()["detail"]


def test_confirm_then_confirm_again_is_409(roles):
    code = register(roles.bureau, make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)), roles.holder).json()["code"]
    confirmed = roles.bureau.post(f"/api/assets/{code}/confirm/")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert [h["kind"] for h in confirmed.json()["history"]] == ["asset.register", "asset.confirm"]
    before = ledger_state()
    again = roles.bureau.post(f"/api/assets/{code}/confirm/")
    assert again.status_code == 409 and again.json()["asset_status"] == "confirmed"
    assert ledger_state() == before


def test_list_filters_and_detail(roles):
    a = register(roles.bureau, make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)), roles.holder).json()["code"]
    b = register(roles.bureau, make_parcel("LQ-2", box(104.70, 32.50, 104.71, 32.51)), roles.buyer).json()["code"]
    roles.bureau.post(f"/api/assets/{b}/confirm/")
    for query, want in [("", [a, b]), (f"?holder={roles.buyer.id}", [b]), ("?status=registered", [a]),
                        ("?bbox=104.6,32.45,104.8,32.6", [b]), (f"?county={COUNTY}", [a, b]), ("?county=510726", [])]:
        page = roles.auditor.get(f"/api/assets/{query}").json()
        assert [r["code"] for r in page["results"]] == want, query
        assert page["count"] == len(want)
    assert roles.exchange.get("/api/assets/?bbox=1,2,3").status_code == 400
    detail = roles.bank.get(f"/api/assets/{a}/").json()
    assert detail["geometry"]["type"] == "Polygon" and detail["valuation"] is None and detail["active_pledges"] == []
    assert roles.bank.get("/api/assets/510727-2026-999999/").status_code == 404
    assert Asset.objects.count() == 2
