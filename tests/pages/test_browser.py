"""The pages in a real browser: headless Debian Chromium driven by Playwright against a live server.

Flows: a bureau user signs in, uploads a raster and parcels, publishes a method, runs accounting, registers,
confirms and values an asset; a bank user signs in, finds the asset, pledges it, downloads its bundle and verifies
it on the verify page. Screenshots go to var/screenshots/ (or $TANHUI_SCREENSHOTS), which git ignores.
Without Chromium the tests skip, unless CI=true, where they fail.
"""

import os
import shutil
from pathlib import Path

import pytest

from accounting.models import MethodVersion
from geo.models import Raster
from ledger.log.services import checkpoint_sign_latest
from ledger.models import Asset, Pledge
from ledger.registry import services as registry
from tests.pages.conftest import PASSWORD, POOL_TABLE_CSV, county_raster, parcels_geojson

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TANHUI_SCREENSHOTS") or PROJECT_ROOT / "var" / "screenshots")


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        message = "Chromium not found: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test still talks to the database directly.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _page(browser, live_server, locale="en-GB"):
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(0)  # no time limits: wait as long as the server takes
    page.base = live_server.url
    return page


def _sign_in(page, username):
    page.goto(page.base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    _submit(page, "form.form button[type=submit]")
    assert "/county/" in page.url, _main(page)


def _submit(page, selector):
    """Click a submit button and wait for the page it leads to (no time limit; a form always leads somewhere)."""
    with page.expect_navigation():
        page.click(selector)


def _main(page) -> str:
    return page.inner_text("main")


def _shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_bureau_uploads_runs_and_registers_then_bank_pledges_and_verifies(browser, live_server, page_user,
                                                                          tmp_path):
    page_user("bureau", username="pingwu-bureau")
    bank_user = page_user("bank", username="mianyang-bank")
    holder = registry.party_create(kind="collective", name="Guanba village collective", uscc="91350100M000100Y43")
    registry.party_create(kind="bank", name="Mianyang Rural Bank", uscc="914403001922038216", user=bank_user)
    raster_path = county_raster(tmp_path / "pingwu-2020.tif")
    parcels_path = tmp_path / "parcels.geojson"
    parcels_geojson(parcels_path)
    pools_path = tmp_path / "pools.csv"
    pools_path.write_text(POOL_TABLE_CSV)

    # --- the bureau ---
    page = _page(browser, live_server)
    _sign_in(page, "pingwu-bureau")
    page.goto(page.base + "/bureau/upload/")
    page.set_input_files("#raster-form input[name=file]", str(raster_path))
    page.fill("#raster-form input[name=epoch]", "2020")
    page.select_option("#raster-form select[name=legend]", "clcd")
    _submit(page, "#raster-form button[type=submit]")
    assert f"Raster {Raster.objects.get().id} stored" in _main(page), _main(page)
    page.set_input_files("#parcel-form input[name=file]", str(parcels_path))
    _submit(page, "#parcel-form button[type=submit]")
    assert "2 parcels imported" in _main(page), _main(page)
    # A wrong file: the reason appears under the field.
    page.set_input_files("#parcel-form input[name=file]", str(pools_path))
    _submit(page, "#parcel-form button[type=submit]")
    assert "not GeoJSON" in page.inner_text("#id_file-error")
    _shot(page, "bureau-upload-error")

    page.goto(page.base + "/runs/")
    page.fill("#method-form input[name=name]", "Test pools")
    page.set_input_files("#method-form input[name=pool_table]", str(pools_path))
    _submit(page, "#method-form button[type=submit]")
    assert f"Method version {MethodVersion.objects.get().id} published" in _main(page), _main(page)
    _submit(page, "#run-form button[type=submit]")
    for _ in range(240):  # the page refreshes itself; a bounded wait, so a stuck run fails instead of hanging
        if "succeeded" in page.get_attribute("#run-status", "class"):
            break
        assert "failed" not in page.get_attribute("#run-status", "class"), _main(page)
        page.wait_for_timeout(500)
        page.wait_for_load_state()
    assert "succeeded" in page.get_attribute("#run-status", "class"), _main(page)
    assert "2 of 2 parcels" in page.inner_text("main")
    _shot(page, "bureau-run")

    page.goto(page.base + "/assets/register/")
    page.fill("#id_parcel_code", "F-1")
    page.select_option("#id_rights_type", "forest_land_ownership")
    page.select_option("#id_holder", str(holder.id))
    page.set_input_files("#id_evidence", str(parcels_path))
    _submit(page, "#register-form button[type=submit]")
    assert page.locator("#asset-status.registered").count() == 1, _main(page)
    _submit(page, "#confirm-button")
    assert page.locator("#asset-status.confirmed").count() == 1, _main(page)
    _submit(page, "#value-form button[type=submit]")
    assert "valued from run" in _main(page), _main(page)
    _shot(page, "bureau-asset")
    asset = Asset.objects.get()
    assert asset.status == Asset.CONFIRMED and asset.valuation is not None

    # --- the bank ---
    page = _page(browser, live_server)
    _sign_in(page, "mianyang-bank")
    _shot(page, "bank-county")
    page.goto(page.base + "/assets/")
    page.fill("#q", "F-1")
    _submit(page, "#asset-search button[type=submit]")
    with page.expect_navigation():
        page.click(f"text={asset.code}")
    page.fill("#id_amount", "99999999")
    _submit(page, "#pledge-form button[type=submit]")
    assert "above the limit" in page.inner_text("#id_amount-error")
    _shot(page, "bank-pledge-refused")
    page.fill("#id_amount", "20000")
    _submit(page, "#pledge-form button[type=submit]")
    assert "registered on asset" in _main(page), _main(page)
    assert Pledge.objects.get().status == Pledge.ACTIVE
    _shot(page, "bank-asset-pledged")

    # A read never signs: the bundle waits for the checkpoint that the interval (or the request the first read
    # makes) brings. Here it comes at once.
    checkpoint_sign_latest(force=True)
    with page.expect_download() as download_info:
        page.click("#bundle-link")
    bundle_path = tmp_path / "bundle.json"
    download_info.value.save_as(bundle_path)
    page.goto(page.base + "/verify/")
    page.set_input_files("#id_bundle", str(bundle_path))
    _submit(page, "#verify-form button[type=submit]")
    assert "Valid" in page.inner_text("#verdict")
    _shot(page, "bank-verify-valid")

    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bundle_path.read_bytes().replace(b"Guanba village collective", b"Somebody else"))
    page.set_input_files("#id_bundle", str(tampered))
    _submit(page, "#verify-form button[type=submit]")
    assert page.locator("#verdict.invalid").count() == 1, _main(page)
    _shot(page, "bank-verify-tampered")


@pytest.mark.django_db(transaction=True)
def test_pages_in_chinese_by_the_browser_language(browser, live_server, page_user):
    page_user("bank", username="mianyang-bank")
    page = _page(browser, live_server, locale="zh-CN")
    page.goto(page.base + "/accounts/login/")
    assert "登录" in page.inner_text("h1")
    page.fill("#id_username", "mianyang-bank")
    page.fill("#id_password", PASSWORD)
    _submit(page, "form.form button[type=submit]")
    assert "/county/" in page.url, _main(page)
    assert "碳汇概览" in page.inner_text("h1")
    page.goto(page.base + "/ledger/")
    assert "公开账本" in page.inner_text("h1")
    _shot(page, "public-ledger-zh")
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert "Public ledger: the latest checkpoint" in page.inner_text("h1")
