"""The API and the pages are two doors to the same services: every write action's refusals (wrong role, wrong
county, bad input, state conflicts) come back with the same status through both, and a service's refusal with
the same problem type (the API's `type`; the page's Tanhui-Problem header). Nothing refused changes anything."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client

from accounting.models import AccountingRun
from ledger.log.models import Entry
from ledger.models import Asset, Party, Pledge
from ledger.registry import services as registry
from tests.pages.conftest import COUNTY

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
OTHER_COUNTY = "510726"


@dataclass
class Case:
    id: str
    who: str  # a key of the `people` fixture
    api: tuple[str, dict | None]  # path and JSON body
    page: tuple[str, dict]  # path and form fields
    status: int  # what both doors answer
    problem: str | None  # the problem slug both name (None: a role check or a body that does not parse)


@pytest.fixture
def scene(county, page_user):
    """The pages' county plus what the refusals need: a second bank with a pledge, an exchange, a bureau of
    another county, a failed run, a household party and a registered (unconfirmed) asset."""
    other_bank_user = page_user("bank", username="other-bank")
    other_bank = registry.party_create(kind="bank", name="Bank B", uscc="91110000100000000R", user=other_bank_user)
    pledge = registry.pledge_create(asset=county.asset, pledgee=other_bank, amount=Decimal("1000"), currency="CNY",
                                    term_months=12)
    household = registry.party_create(kind="household", name="Zhao household")
    registered = registry.asset_register(parcel=county.run.parcels.get(code="G-1"), rights_type="grassland_contract",
                                         holder=household, evidence=[], county_code=COUNTY)
    failed = AccountingRun.objects.create(method_version=county.run.method_version, raster=county.run.raster,
                                          county_code=COUNTY, status=AccountingRun.FAILED,
                                          method_sha256=county.run.method_sha256, input_raster_sha256=[])
    people = {"bureau": county.bureau, "bank": county.bank_user, "other_bank": other_bank_user,
              "exchange": page_user("exchange"), "auditor": page_user("auditor"),
              "other_bureau": page_user("bureau", username="other-bureau", county=OTHER_COUNTY)}
    return type("Scene", (), {"county": county, "people": people, "pledge": pledge, "household": household,
                              "registered": registered, "failed": failed, "other_bank": other_bank})


def cases(s) -> list[Case]:
    a, r, c = s.county.asset.code, s.registered.code, s.county
    f1 = c.asset.parcel
    register_api = {"parcel": f1.id, "rights_type": "forest_land_use", "holder": c.holder.id, "evidence": []}
    register_page = {"parcel_code": f1.code, "rights_type": "forest_land_use", "holder": c.holder.id}
    value_api = {"run": c.run.id, "price_per_tCO2e": "85", "currency": "CNY"}
    value_page = {"run": c.run.id, "price_per_t_co2e": "85", "currency": "CNY"}
    pledge_body = {"amount": "1000", "currency": "CNY", "term_months": 12}
    return [
        # register
        Case("register: a bank may not", "bank", ("/api/assets/", register_api), ("/assets/register/", register_page),
             403, None),
        Case("register: the parcel overlaps an asset", "bureau", ("/api/assets/", register_api),
             ("/assets/register/", register_page), 409, "parcel-overlaps-asset"),
        Case("register: a bank as the holder", "bureau",
             ("/api/assets/", {**register_api, "holder": c.bank.id}),
             ("/assets/register/", {**register_page, "holder": c.bank.id}), 422, "invalid-registry-request"),
        Case("register: an unknown holder", "bureau", ("/api/assets/", {**register_api, "holder": 999999}),
             ("/assets/register/", {**register_page, "holder": 999999}), 422, "invalid-registry-request"),
        Case("register: an unknown rights type", "bureau", ("/api/assets/", {**register_api, "rights_type": "x"}),
             ("/assets/register/", {**register_page, "rights_type": "x"}), 400, None),
        # confirm
        Case("confirm: a bureau of another county", "other_bureau", (f"/api/assets/{r}/confirm/", None),
             (f"/assets/{r}/confirm/", {}), 403, "outside-your-county"),
        Case("confirm: already confirmed", "bureau", (f"/api/assets/{a}/confirm/", None),
             (f"/assets/{a}/confirm/", {}), 409, "asset-state"),
        Case("confirm: an exchange may not", "exchange", (f"/api/assets/{r}/confirm/", None),
             (f"/assets/{r}/confirm/", {}), 403, None),
        # value
        Case("value: a bureau of another county", "other_bureau", (f"/api/assets/{a}/valuations/", value_api),
             (f"/assets/{a}/value/", value_page), 403, "outside-your-county"),
        Case("value: a failed run", "bureau", (f"/api/assets/{a}/valuations/", {**value_api, "run": s.failed.id}),
             (f"/assets/{a}/value/", {**value_page, "run": s.failed.id}), 422, "cannot-value-asset"),
        Case("value: an unknown run", "bureau", (f"/api/assets/{a}/valuations/", {**value_api, "run": 999999}),
             (f"/assets/{a}/value/", {**value_page, "run": 999999}), 422, "invalid-registry-request"),
        Case("value: a price that is not a number", "bureau",
             (f"/api/assets/{a}/valuations/", {**value_api, "price_per_tCO2e": "lots"}),
             (f"/assets/{a}/value/", {**value_page, "price_per_t_co2e": "lots"}), 400, None),
        Case("value: not yet confirmed", "bureau", (f"/api/assets/{r}/valuations/", value_api),
             (f"/assets/{r}/value/", value_page), 409, "asset-state"),
        # pledge
        Case("pledge: an exchange may not", "exchange", (f"/api/assets/{a}/pledges/", pledge_body),
             (f"/assets/{a}/pledge/", pledge_body), 403, None),
        Case("pledge: amount zero", "bank", (f"/api/assets/{a}/pledges/", {**pledge_body, "amount": "0"}),
             (f"/assets/{a}/pledge/", {**pledge_body, "amount": "0"}), 422, "invalid-registry-request"),
        Case("pledge: amount below the cent", "bank", (f"/api/assets/{a}/pledges/", {**pledge_body, "amount": "0.001"}),
             (f"/assets/{a}/pledge/", {**pledge_body, "amount": "0.001"}), 422, "invalid-registry-request"),
        Case("pledge: term beyond 600 months", "bank",
             (f"/api/assets/{a}/pledges/", {**pledge_body, "term_months": 601}),
             (f"/assets/{a}/pledge/", {**pledge_body, "term_months": 601}), 422, "invalid-registry-request"),
        Case("pledge: another currency than the valuation's", "bank",
             (f"/api/assets/{a}/pledges/", {**pledge_body, "currency": "USD"}),
             (f"/assets/{a}/pledge/", {**pledge_body, "currency": "USD"}), 422, "invalid-registry-request"),
        Case("pledge: beyond the loan-to-value limit", "bank",
             (f"/api/assets/{a}/pledges/", {**pledge_body, "amount": "999999999"}),
             (f"/assets/{a}/pledge/", {**pledge_body, "amount": "999999999"}), 409, "pledge-limit-exceeded"),
        Case("pledge: an unconfirmed asset", "bank", (f"/api/assets/{r}/pledges/", pledge_body),
             (f"/assets/{r}/pledge/", pledge_body), 409, "asset-state"),
        Case("pledge: a term that is not a number", "bank",
             (f"/api/assets/{a}/pledges/", {**pledge_body, "term_months": "twelve"}),
             (f"/assets/{a}/pledge/", {**pledge_body, "term_months": "twelve"}), 400, None),
        # transfer
        Case("transfer: to a bank", "exchange", (f"/api/assets/{r}/transfers/", {"to_holder": c.bank.id}),
             (f"/assets/{r}/transfer/", {"to_holder": c.bank.id}), 409, "asset-state"),
        Case("transfer: while pledged", "exchange", (f"/api/assets/{a}/transfers/", {"to_holder": s.household.id}),
             (f"/assets/{a}/transfer/", {"to_holder": s.household.id}), 409, "asset-pledged"),
        Case("transfer: a bank may not", "bank", (f"/api/assets/{a}/transfers/", {"to_holder": s.household.id}),
             (f"/assets/{a}/transfer/", {"to_holder": s.household.id}), 403, None),
        Case("transfer: an unknown party", "exchange", (f"/api/assets/{a}/transfers/", {"to_holder": 999999}),
             (f"/assets/{a}/transfer/", {"to_holder": 999999}), 422, "invalid-registry-request"),
        # retire
        Case("retire: no beneficiary", "exchange", (f"/api/assets/{a}/retire/", {"beneficiary": "", "reason": "x"}),
             (f"/assets/{a}/retire/", {"beneficiary": "", "reason": "x"}), 400, None),
        Case("retire: while pledged", "exchange", (f"/api/assets/{a}/retire/", {"beneficiary": "B", "reason": "R"}),
             (f"/assets/{a}/retire/", {"beneficiary": "B", "reason": "R"}), 409, "asset-pledged"),
        Case("retire: an auditor may not", "auditor", (f"/api/assets/{a}/retire/", {"beneficiary": "B", "reason": "R"}),
             (f"/assets/{a}/retire/", {"beneficiary": "B", "reason": "R"}), 403, None),
        # release
        Case("release: another bank's pledge", "bank", (f"/api/pledges/{s.pledge.id}/release/", None),
             (f"/pledges/{s.pledge.id}/release/", {}), 403, "registry-forbidden"),
        Case("release: a bureau may not", "bureau", (f"/api/pledges/{s.pledge.id}/release/", None),
             (f"/pledges/{s.pledge.id}/release/", {}), 403, None),
    ]


def _state() -> tuple:
    return (Entry.objects.count(), list(Asset.objects.order_by("id").values_list("status", "holder_id")),
            list(Pledge.objects.order_by("id").values_list("status", flat=True)), Party.objects.count())


def test_every_refusal_is_the_same_through_the_api_and_the_pages(scene):
    all_cases = cases(scene)
    # The transfer of an unconfirmed asset to a bank: the state check comes first, on both doors alike.
    disagreements = []
    for case in all_cases:
        user = scene.people[case.who]
        before = _state()
        api_client, page_client = Client(), Client()
        api_client.force_login(user)
        page_client.force_login(user)
        path, body = case.api
        api = api_client.post(path, body or {}, content_type="application/json", **EN)
        page = page_client.post(case.page[0], case.page[1], **EN)
        api_problem = api.json().get("type") if api["Content-Type"].startswith("application/problem+json") else None
        page_problem = page.get("Tanhui-Problem")
        want_problem = f"/problems/{case.problem}" if case.problem else None
        got = (api.status_code, page.status_code, api_problem if case.problem else None, page_problem)
        want = (case.status, case.status, want_problem, want_problem)
        if got != want:
            disagreements.append(f"{case.id}: API {api.status_code} {api_problem}, page {page.status_code} "
                                 f"{page_problem}; want {case.status} {want_problem}")
        assert _state() == before, f"{case.id} changed something"
    assert not disagreements, "\n".join(disagreements)


def test_a_transfer_to_a_bank_is_refused_on_both_doors(scene):
    """Seen before: POST …/transfers/ with a bank as the new holder answered 201 and a bank held the asset."""
    scene.pledge.refresh_from_db()
    registry.pledge_release(pledge=scene.pledge, released_by=scene.other_bank)
    code, bank = scene.county.asset.code, scene.county.bank
    for client_kind in ("api", "page"):
        client = Client()
        client.force_login(scene.people["exchange"])
        if client_kind == "api":
            response = client.post(f"/api/assets/{code}/transfers/", {"to_holder": bank.id},
                                   content_type="application/json", **EN)
            assert response.status_code == 422 and response.json()["type"] == "/problems/invalid-registry-request"
            assert response.json()["detail"] == f"party {bank.id} is a bank, not a rights holder"
        else:
            response = client.post(f"/assets/{code}/transfer/", {"to_holder": bank.id}, **EN)
            assert response.status_code == 422
            assert f"party {bank.id} is a bank, not a rights holder" in response.content.decode()
    asset = Asset.objects.get(code=code)
    assert asset.holder_id == scene.county.holder.id and not asset.transfers.exists()


def test_an_auditor_reads_the_runs_on_both_doors(scene):
    client = Client()
    client.force_login(scene.people["auditor"])
    assert client.get("/api/runs/", **EN).status_code == 200
    page = client.get("/runs/", **EN)
    assert page.status_code == 200
    assert f"/runs/{scene.county.run.id}/" in page.content.decode()
    assert 'action="/runs/start/"' not in page.content.decode()  # reads, starts nothing


def test_the_pledged_filter_is_the_same_on_both_doors(scene):
    client = Client()
    client.force_login(scene.people["bank"])
    api = client.get("/api/assets/?status=pledged", **EN)
    assert api.status_code == 200
    assert [a["code"] for a in api.json()["results"]] == [scene.county.asset.code]
    page = client.get("/assets/?status=pledged", **EN).content.decode()
    assert scene.county.asset.code in page and scene.registered.code not in page


def test_the_id_fields_offer_what_fits(scene):
    """The pages' drop-downs still list only what fits (the service refuses the rest, as above)."""
    client = Client()
    client.force_login(scene.people["bureau"])
    page = client.get("/assets/register/", **EN).content.decode()
    holders = page.split('id="id_holder"', 1)[1].split("</select>", 1)[0]
    assert f'value="{scene.household.id}"' in holders and f'value="{scene.county.holder.id}"' in holders
    assert f'value="{scene.county.bank.id}"' not in holders and f'value="{scene.other_bank.id}"' not in holders
    value = client.get(f"/assets/{scene.county.asset.code}/", **EN).content.decode()
    runs = value.split('id="id_run"', 1)[1].split("</select>", 1)[0]
    assert f'value="{scene.county.run.id}"' in runs and f'value="{scene.failed.id}"' not in runs


def test_a_refusal_reads_in_chinese_on_both_doors(scene):
    """The same refusal, in the caller's language: Accept-Language on the API, the chosen language on the page."""
    code, pledge = scene.county.asset.code, scene.pledge
    client = Client()
    client.force_login(scene.people["exchange"])
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    want = (f"质押 {pledge.id} 有效期间，资产 {code} 不能转让（质权人 {scene.other_bank.id}，1000.00 CNY）")
    api = client.post(f"/api/assets/{code}/transfers/", {"to_holder": scene.household.id},
                      content_type="application/json", **zh)
    assert api.status_code == 409
    assert api.json()["detail"] == want and api.json()["title"] == "资产已质押"
    page = client.post(f"/assets/{code}/transfer/", {"to_holder": scene.household.id}, **zh)
    assert page.status_code == 409 and want in page.content.decode()
    english = client.post(f"/api/assets/{code}/transfers/", {"to_holder": scene.household.id},
                          content_type="application/json", **EN)
    assert english.json()["detail"] == (f"asset {code} cannot be transferred while pledge {pledge.id} is active "
                                        f"(pledgee party {scene.other_bank.id}, 1000.00 CNY)")


# --- uploads, runs and methods (geo and accounting) --------------------------------------------------------------

def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def _both(scene, who: str, api: tuple, page: tuple):
    """POST through both doors as `who`: api = (path, kwargs for the client), page = (path, form data)."""
    api_client, page_client = Client(), Client()
    api_client.force_login(scene.people[who])
    page_client.force_login(scene.people[who])
    return api_client.post(api[0], **api[1], **EN), page_client.post(page[0], page[1], **EN)


def _same(api, page, status: int, problem: str | None):
    got = (api.status_code, page.status_code,
           api.json().get("type") if problem else None, page.get("Tanhui-Problem"))
    assert got == (status, status, f"/problems/{problem}" if problem else None,
                   f"/problems/{problem}" if problem else None)


@pytest.mark.parametrize(("case", "who", "fields", "status", "problem"), [
    ("a bank may not upload", "bank", {"epoch": 2021, "legend": "clcd"}, 403, None),
    ("no epoch", "bureau", {"legend": "clcd"}, 400, None),
    ("not a raster", "bureau", {"epoch": 2021, "legend": "clcd"}, 422, "invalid-raster"),
    ("an unknown legend", "bureau", {"epoch": 2021, "legend": "no-such-legend"}, 422, "invalid-legend"),
])
def test_raster_upload_refusals_agree(scene, case, who, fields, status, problem):
    before = scene.county.run.raster.__class__.objects.count()
    api, page = _both(scene, who,
                      ("/api/rasters/", {"data": {**fields, "file": _upload("x.tif", b"this is not an image")}}),
                      ("/bureau/upload/raster/", {**fields, "file": _upload("x.tif", b"this is not an image")}))
    _same(api, page, status, problem)
    assert scene.county.run.raster.__class__.objects.count() == before


def test_parcel_upload_refusals_agree(scene):
    import json

    from geo.models import Parcel
    from tests.pages.conftest import parcels_geojson

    before = Parcel.objects.count()
    outside = parcels_geojson(codes=("X-1",))
    outside["features"][0]["properties"]["county"] = "12"
    taken = parcels_geojson(codes=("F-1",))  # already imported for the county
    for collection, status, problem in ((outside, 422, "invalid-parcels"), (taken, 409, "duplicate-parcel")):
        body = json.dumps(collection)
        api, page = _both(scene, "bureau", ("/api/parcels/", {"data": body, "content_type": "application/json"}),
                          ("/bureau/upload/parcels/", {"file": _upload("p.geojson", body.encode())}))
        _same(api, page, status, problem)
    api, page = _both(scene, "bank", ("/api/parcels/", {"data": json.dumps(outside),
                                                         "content_type": "application/json"}),
                      ("/bureau/upload/parcels/", {"file": _upload("p.geojson", json.dumps(outside).encode())}))
    _same(api, page, 403, None)
    assert Parcel.objects.count() == before


def test_run_start_refusals_agree(scene):
    run = scene.county.run
    runs_before = AccountingRun.objects.count()
    api_body = {"method_version": run.method_version_id, "raster": run.raster_id, "county": COUNTY,
                "price_per_tC": "100", "currency": "CNY"}
    page_form = {"method_version": run.method_version_id, "raster": run.raster_id, "price_per_t_c": "100",
                 "currency": "CNY", "discount_rate_pct": "0"}
    api, page = _both(scene, "bureau", ("/api/runs/", {"data": api_body, "content_type": "application/json"}),
                      ("/runs/start/", page_form))
    _same(api, page, 422, "invalid-run")  # a price needs a second epoch
    api, page = _both(scene, "exchange", ("/api/runs/", {"data": api_body, "content_type": "application/json"}),
                      ("/runs/start/", page_form))
    _same(api, page, 403, None)
    assert AccountingRun.objects.count() == runs_before


def test_the_same_invest_table_is_one_method_version_through_both_doors(scene):
    """Seen before: the page dropped LULC_Name, so one InVEST table gave two method versions with two hashes."""
    from accounting.models import MethodVersion
    from tests.pages.conftest import POOL_TABLE_CSV

    client = Client()
    client.force_login(scene.people["bureau"])
    versions = MethodVersion.objects.count()  # the county's run already used this table, read from the CSV
    page = client.post("/runs/methods/", {"name": "InVEST table", "pool_table": _upload(
        "pools.csv", POOL_TABLE_CSV.encode())}, **EN)
    assert page.status_code == 302
    # The same table as JSON, written out by hand from the CSV (lucode, LULC_Name, c_above, c_below, c_soil, c_dead).
    pools = [{"lucode": 2, "lulc_name": "Forest", "c_above": 120, "c_below": 30, "c_soil": 80, "c_dead": 10},
             {"lucode": 4, "lulc_name": "Grassland", "c_above": 2.5, "c_below": 10, "c_soil": 60, "c_dead": 0}]
    api = client.post("/api/methods/", {"kind": "pool_table", "name": "InVEST table", "parameters": {"pools": pools}},
                      content_type="application/json", **EN)
    assert api.status_code == 200  # already published: the same version
    version = MethodVersion.objects.get(id=api.json()["id"])
    assert version.id == scene.county.run.method_version_id
    assert [p["lulc_name"] for p in version.parameters["pools"]] == ["Forest", "Grassland"]
    assert MethodVersion.objects.count() == versions


def test_a_refusal_names_its_field_and_fills_every_value(scene):
    """Seen before: "%(field)s: no party %(party_id)s" came out unfilled, and the API's 422 named no field."""
    client = Client()
    client.force_login(scene.people["exchange"])
    code = scene.registered.code
    api = client.post(f"/api/assets/{code}/transfers/", {"to_holder": 999999}, content_type="application/json", **EN)
    assert api.status_code == 422
    assert api.json()["detail"] == "to_holder: no party 999999"
    assert api.json()["errors"] == [{"pointer": "#/to_holder", "detail": "to_holder: no party 999999"}]
    page = client.post(f"/assets/{code}/transfer/", {"to_holder": 999999}, **EN).content.decode()
    assert "to_holder: no party 999999" in page


def test_codes_inside_a_chinese_message_read_as_their_labels(scene):
    """Seen before: 主体 7 是 bank，不是权利人 — the party kind and the asset status stayed English codes."""
    client = Client()
    client.force_login(scene.people["exchange"])
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    pledge = scene.pledge
    registry.pledge_release(pledge=pledge, released_by=scene.other_bank)
    api = client.post(f"/api/assets/{scene.county.asset.code}/transfers/", {"to_holder": scene.county.bank.id},
                      content_type="application/json", **zh)
    assert api.json()["detail"] == f"主体 {scene.county.bank.id} 是银行，不是权利人"
    assert api.json()["party_kind"] == "bank"  # the member keeps the code
    bank = Client()
    bank.force_login(scene.people["other_bank"])
    again = bank.post(f"/api/pledges/{pledge.id}/release/", **zh)
    assert again.json()["detail"] == f"质押 {pledge.id} 的状态为已解除；只有有效的质押才能解除"


def test_verify_answers_alike_on_both_doors(scene):
    """A verdict, valid or not, is a 200 on both; a file that is not a bundle is the same 422 problem."""
    from ledger.log.services import checkpoint_sign_latest

    checkpoint_sign_latest(force=True)  # a GET never signs: the bundle needs a checkpoint that covers the asset
    client = Client()
    client.force_login(scene.people["bank"])
    bundle = client.get(f"/api/assets/{scene.county.asset.code}/bundle/").content
    tampered = bundle.replace(b"Guanba village collective", b"Someone else")
    api = client.post("/api/verify/", tampered, content_type="application/json", **EN)
    page = client.post("/verify/", {"bundle": _upload("b.json", tampered)}, **EN)
    assert (api.status_code, api.json()["valid"], page.status_code) == (200, False, 200)
    api = client.post("/api/verify/", b"not json", content_type="application/json", **EN)
    page = client.post("/verify/", {"bundle": _upload("b.json", b"not json")}, **EN)
    assert api.status_code == page.status_code == 422
    assert page["Tanhui-Problem"] == api.json()["type"] == "/problems/unusable-bundle"


def test_an_unknown_status_filter_is_refused_on_both_doors(scene):
    client = Client()
    client.force_login(scene.people["bank"])
    assert client.get("/api/assets/?status=bogus", **EN).status_code == 400
    assert client.get("/assets/?status=bogus", **EN).status_code == 400
