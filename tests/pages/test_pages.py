"""Every page renders in English and Chinese, refuses the wrong role, and shows errors next to the field."""

import json
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from geo.models import Parcel
from ledger.models import Party
from ledger.registry import services as registry
from tests.pages.conftest import COUNTY, parcels_geojson

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def field_error(html: str, field: str) -> str:
    """The text of the error shown right under form field `field` (empty when there is none)."""
    found = re.findall(rf'<p class="error" id="id_{field}-error">(.*?)</p>', html, re.S)
    return " ".join(found)


PAGES = [  # (url builder, role, an English string, its Chinese translation)
    (lambda c: f"/county/{COUNTY}/", "bank", "carbon-sink overview", "碳汇概览"),
    (lambda c: "/assets/", "bank", "Ecological assets", "生态资产"),
    (lambda c: f"/assets/{c.asset.code}/", "bank", "Ledger history", "账本记录"),
    (lambda c: "/bureau/upload/", "bureau", "Upload land cover and parcels", "上传土地覆盖与地块"),
    (lambda c: "/runs/", "bureau", "Start a run", "发起核算"),
    (lambda c: f"/runs/{c.run.id}/", "bureau", "Accounting run", "碳汇核算"),
    (lambda c: "/assets/register/", "bureau", "Recently registered", "最近登记"),
    (lambda c: "/pledges/", "bank", "No pledges yet", "尚无质押"),
    (lambda c: "/verify/", None, "Verify a pledge bundle", "验证质押数据包"),
    (lambda c: "/ledger/", None, "Public ledger", "公开账本"),
    (lambda c: "/accounts/login/", None, "Sign in", "登录"),
]


@pytest.mark.parametrize(("url", "role", "english", "chinese"), PAGES, ids=[p[2] for p in PAGES])
def test_page_renders_in_english_and_chinese(client, county, url, role, english, chinese):
    if role is not None:
        client.force_login(county.bureau if role == "bureau" else county.bank_user)
    path = url(county)
    page_en = client.get(path, **EN)
    assert page_en.status_code == 200
    assert english in page_en.content.decode()
    page_zh = client.get(path, **ZH)
    assert page_zh.status_code == 200
    assert chinese in page_zh.content.decode()
    assert english not in page_zh.content.decode()


def test_language_switch_sets_chinese(client, county):
    client.force_login(county.bank_user)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/assets/"})
    assert response.status_code == 302
    assert "生态资产" in client.get("/assets/", **EN).content.decode()


def test_anonymous_user_is_sent_to_sign_in(client, county):
    response = client.get(f"/assets/{county.asset.code}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_sign_in_with_an_api_user_lands_on_the_county(client, county):
    response = client.post("/accounts/login/", {"username": "bank-user", "password": "correct horse battery staple 9"})
    assert response.status_code == 302
    response = client.get("/")
    assert response["Location"] == f"/county/{COUNTY}/"


def test_wrong_password_is_explained(client, county):
    response = client.post("/accounts/login/", {"username": "bank-user", "password": "nope"}, **EN)
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()


@pytest.mark.parametrize("path", ["/bureau/upload/", "/assets/register/"])
def test_a_bank_cannot_open_bureau_pages(client, county, path):
    client.force_login(county.bank_user)
    response = client.get(path, **EN)
    assert response.status_code == 403
    assert "This page needs the role" in response.content.decode()


def test_a_bank_reads_the_runs_but_is_offered_no_run_form(client, county):
    """As GET /api/runs/ is open to every role, so is the runs page; starting a run stays the bureau's."""
    client.force_login(county.bank_user)
    page = client.get("/runs/", **EN)
    assert page.status_code == 200
    assert f"/runs/{county.run.id}/" in page.content.decode() and 'id="run-form"' not in page.content.decode()
    assert client.post("/runs/start/", {"method_version": county.run.method_version_id}, **EN).status_code == 403


def test_a_bank_cannot_post_an_upload(client, county):
    client.force_login(county.bank_user)
    response = client.post("/bureau/upload/raster/", {"epoch": 2020, "legend": "clcd"})
    assert response.status_code == 403


def test_a_bureau_cannot_pledge(client, county):
    client.force_login(county.bureau)
    response = client.post(f"/assets/{county.asset.code}/pledge/", {"amount": "1", "currency": "CNY",
                                                                    "term_months": 12})
    assert response.status_code == 403
    assert not county.asset.pledges.exists()


def test_a_bad_raster_is_refused_next_to_the_file_field(client, county):
    client.force_login(county.bureau)
    response = client.post("/bureau/upload/raster/", {
        "file": SimpleUploadedFile("notes.tif", b"this is not an image"), "epoch": 2021, "legend": "clcd"}, **EN)
    assert response.status_code == 422
    assert "not a GeoTIFF" in field_error(response.content.decode(), "file")


def test_a_missing_epoch_is_shown_next_to_the_epoch_field(client, county):
    client.force_login(county.bureau)
    response = client.post("/bureau/upload/raster/", {"legend": "clcd"}, **EN)
    assert response.status_code == 400  # a form that does not parse, as the API answers
    assert "required" in field_error(response.content.decode(), "epoch")


def test_bad_parcels_are_listed_next_to_the_file_field(client, county):
    client.force_login(county.bureau)
    collection = parcels_geojson(codes=("X-1", "X-2"))
    collection["features"][1]["properties"]["county"] = "12"
    upload = SimpleUploadedFile("parcels.geojson", json.dumps(collection).encode())
    response = client.post("/bureau/upload/parcels/", {"file": upload}, **EN)
    assert response.status_code == 422
    error = field_error(response.content.decode(), "file")
    assert "feature 1" in error and "county" in error
    assert not Parcel.objects.filter(code="X-1").exists()


def test_parcels_upload_imports_and_redirects(client, county):
    client.force_login(county.bureau)
    upload = SimpleUploadedFile("p.geojson", json.dumps(parcels_geojson(codes=("N-1",))).encode())
    response = client.post("/bureau/upload/parcels/", {"file": upload}, follow=True, **EN)
    assert response.status_code == 200
    assert "1 parcels imported" in response.content.decode()


def test_an_overlapping_registration_names_the_asset_next_to_the_parcel(client, county):
    client.force_login(county.bureau)
    response = client.post("/assets/register/", {"parcel_code": "F-1", "rights_type": "forest_land_use",
                                                 "holder": county.holder.id}, **EN)
    assert response.status_code == 409
    assert f"overlaps asset {county.asset.code}" in field_error(response.content.decode(), "parcel_code")


def test_an_unknown_parcel_code_is_shown_next_to_the_field(client, county):
    client.force_login(county.bureau)
    response = client.post("/assets/register/", {"parcel_code": "NOPE", "rights_type": "forest_land_use",
                                                 "holder": county.holder.id}, **EN)
    assert "No parcel with code NOPE" in field_error(response.content.decode(), "parcel_code")


def test_a_pledge_beyond_the_limit_is_refused_next_to_the_amount(client, county):
    client.force_login(county.bank_user)
    response = client.post(f"/assets/{county.asset.code}/pledge/", {
        "amount": "999999999", "currency": "CNY", "term_months": 12}, **EN)
    assert response.status_code == 409
    assert "above the limit" in field_error(response.content.decode(), "amount")
    assert not county.asset.pledges.exists()


def test_pledge_and_release(client, county):
    client.force_login(county.bank_user)
    response = client.post(f"/assets/{county.asset.code}/pledge/", {"amount": "1000", "currency": "CNY",
                                                                    "term_months": 12}, follow=True, **EN)
    assert "registered on asset" in response.content.decode()
    pledge = county.asset.pledges.get()
    response = client.post(f"/pledges/{pledge.id}/release/", follow=True, **EN)
    assert "released" in response.content.decode()
    pledge.refresh_from_db()
    assert pledge.status == "released"


def test_a_bank_sees_its_pledges_and_releases_one_from_the_list(client, county):
    client.force_login(county.bank_user)
    for amount in ("1000", "2500.50"):
        client.post(f"/assets/{county.asset.code}/pledge/", {"amount": amount, "currency": "CNY",
                                                             "term_months": 12}, **EN)
    page = client.get("/pledges/", **EN).content.decode()
    assert "2 active pledges · 3,500.50 CNY" in page
    assert page.count(f'href="/assets/{county.asset.code}/"') >= 2
    first = county.asset.pledges.order_by("id").first()
    response = client.post(f"/pledges/{first.id}/release/", {"back": "pledges"}, follow=True, **EN)
    assert response.redirect_chain[-1][0] == "/pledges/"
    page = response.content.decode()
    assert f"Pledge {first.id} released." in page
    assert "1 active pledge · 2,500.50 CNY" in page
    assert "1 active pledge" in page and "released" in page
    assert "生效中的质押 1 笔" in client.get("/pledges/", **ZH).content.decode()


def test_only_banks_have_a_pledge_book(client, county, page_user):
    client.force_login(county.bureau)
    assert client.get("/pledges/", **EN).status_code == 403
    client.force_login(page_user("bank", username="bank-without-party"))
    response = client.get("/pledges/", **EN)
    assert response.status_code == 403
    assert "acts for no bank party" in response.content.decode()


def test_an_exchange_settles_a_transfer_from_the_asset_page(client, county, page_user):
    buyer = registry.party_create(kind="company", name="Sichuan Green Energy Co.", uscc="91510100MA61R0XX5W")
    client.force_login(page_user("exchange"))
    page = client.get(f"/assets/{county.asset.code}/", **ZH).content.decode()
    assert 'id="transfer-form"' in page and "办理转让" in page
    assert f'<option value="{county.holder.id}"' not in page  # the holder cannot be its own buyer
    assert f'<option value="{county.bank.id}"' not in page  # banks hold pledges, not rights
    assert f'<option value="{buyer.id}">Sichuan Green Energy Co. · company</option>' in client.get(
        f"/assets/{county.asset.code}/", **EN).content.decode()
    response = client.post(f"/assets/{county.asset.code}/transfer/", {"to_holder": buyer.id,
                                                                      "trade_ref": "SCEEX-2026-0042"},
                           follow=True, **EN)
    assert f"Asset {county.asset.code} transferred to Sichuan Green Energy Co." in response.content.decode()
    county.asset.refresh_from_db()
    assert county.asset.holder_id == buyer.id
    assert county.asset.transfers.get().trade_ref == "SCEEX-2026-0042"


def test_a_pledged_asset_offers_no_transfer_and_refuses_one(client, county, page_user):
    buyer = registry.party_create(kind="household", name="Zhao household")
    registry.pledge_create(asset=county.asset, pledgee=county.bank, amount=Decimal(1000), currency="CNY",
                           term_months=12)
    client.force_login(page_user("exchange"))
    assert 'id="transfer-form"' not in client.get(f"/assets/{county.asset.code}/", **EN).content.decode()
    response = client.post(f"/assets/{county.asset.code}/transfer/", {"to_holder": buyer.id}, **EN)
    assert response.status_code == 409
    assert "cannot be transferred while pledge" in response.content.decode()
    county.asset.refresh_from_db()
    assert county.asset.holder_id == county.holder.id
    client.force_login(county.bank_user)
    assert client.post(f"/assets/{county.asset.code}/transfer/", {"to_holder": buyer.id}, **EN).status_code == 403


def test_an_exchange_retires_an_asset_for_an_offset_claim(client, county, page_user):
    client.force_login(page_user("exchange"))
    page = client.get(f"/assets/{county.asset.code}/", **ZH).content.decode()
    assert 'id="retire-form"' in page and "注销用于抵消" in page
    missing = client.post(f"/assets/{county.asset.code}/retire/", {"beneficiary": "", "reason": "x"}, **EN)
    assert missing.status_code == 400  # a form that does not parse, as the API answers a body it cannot parse
    assert field_error(missing.content.decode(), "beneficiary")
    response = client.post(f"/assets/{county.asset.code}/retire/", {
        "beneficiary": "Chengdu Metro Line 18", "reason": "2026 operations offset"}, follow=True, **EN)
    page = response.content.decode()
    assert f"Asset {county.asset.code} retired for Chengdu Metro Line 18." in page
    assert 'id="retire-form"' not in page and 'id="transfer-form"' not in page
    county.asset.refresh_from_db()
    assert county.asset.status == "retired"
    again = client.post(f"/assets/{county.asset.code}/retire/", {"beneficiary": "B", "reason": "R"}, **EN)
    assert again.status_code == 409
    assert "only a confirmed asset can be retired" in again.content.decode()


def test_run_start_and_progress_page(client, county, django_capture_on_commit_callbacks):
    client.force_login(county.bureau)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/runs/start/", {"method_version": county.run.method_version_id,
                                                "raster": county.run.raster_id, "currency": "CNY",
                                                "discount_rate_pct": "0"}, **EN)
    assert response.status_code == 302
    page = client.get(response["Location"], **EN).content.decode()
    assert "succeeded" in page and "2 of 2 parcels" in page


def test_a_price_without_a_second_epoch_is_refused_next_to_the_field(client, county):
    client.force_login(county.bureau)
    response = client.post("/runs/start/", {"method_version": county.run.method_version_id,
                                            "raster": county.run.raster_id, "price_per_t_c": "100",
                                            "currency": "CNY", "discount_rate_pct": "0"}, **EN)
    assert response.status_code == 422
    assert "alternate raster" in field_error(response.content.decode(), "alt_raster")


def test_a_bad_pool_table_is_refused_next_to_the_file(client, county):
    client.force_login(county.bureau)
    response = client.post("/runs/methods/", {"name": "bad", "pool_table": SimpleUploadedFile(
        "pools.csv", b"lucode,c_above\n2,10\n")}, **EN)
    assert response.status_code == 422
    assert "header lacks" in field_error(response.content.decode(), "pool_table")


def test_verify_page_explains_an_unreadable_file(client, county):
    response = client.post("/verify/", {"bundle": SimpleUploadedFile("b.json", b"not json")}, **EN)
    assert response.status_code == 422
    assert "Cannot be checked" in response.content.decode()


def test_verify_page_accepts_the_assets_bundle_and_names_a_tampered_field(client, county, checkpoint_requests):
    client.force_login(county.bank_user)
    bundle = client.get(f"/api/assets/{county.asset.code}/bundle/")
    if bundle.status_code == 409:  # checkpoint-due: the requested checkpoint is signed, then the bundle is there
        [(_, sign)] = checkpoint_requests
        sign()
        bundle = client.get(f"/api/assets/{county.asset.code}/bundle/")
    assert bundle.status_code == 200
    good = client.post("/verify/", {"bundle": SimpleUploadedFile("b.json", bundle.content)}, **EN)
    assert good.status_code == 200
    assert "Valid" in good.content.decode()
    tampered = bundle.content.replace(b"Guanba village collective", b"Someone else")
    bad = client.post("/verify/", {"bundle": SimpleUploadedFile("b.json", tampered)}, **EN)
    assert bad.status_code == 200  # a verdict, as POST /api/verify/ answers {"valid": false} with 200
    assert "Not valid" in bad.content.decode()


def test_bank_party_without_user_sees_no_pledge_form(client, county, page_user):
    other = page_user("bank", username="bank-without-party")
    client.force_login(other)
    page = client.get(f"/assets/{county.asset.code}/", **EN).content.decode()
    assert 'id="pledge-form"' not in page
    assert Party.objects.filter(user=other).count() == 0
