"""Registry fixtures: a fresh signing key per test, users of each role with their parties, parcels, and
accounting results built directly (the accounting engine has its own tests; the end-to-end test runs it)."""

import hashlib

import pytest

from accounting.models import AccountingRun, MethodVersion, ParcelResult
from geo.models import Raster
from geo.services import parcel_import
from ledger.models import Entry
from ledger.registry import projection
from ledger.registry import services as registry

COUNTY = "510727"  # Pingwu County, Sichuan
OTHER_COUNTY = "510726"


@pytest.fixture(autouse=True)
def registry_settings(settings):
    """The registry's defaults, whatever the environment says (keys and VAR_DIR: tests/conftest.py)."""
    settings.PLEDGE_LTV_LIMIT_PCT = "50"
    settings.ASSET_OVERLAP_TOLERANCE_HA = 0.01


def box(lon1, lat1, lon2, lat2) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon1, lat1], [lon2, lat1], [lon2, lat2], [lon1, lat2], [lon1, lat1]]]}


def feature(code, geometry, county=COUNTY) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": {"code": code, "county": county}}


def make_parcel(code, geometry, county=COUNTY):
    collection = {"type": "FeatureCollection", "features": [feature(code, geometry, county)]}
    return parcel_import(feature_collection=collection, allowed_county=county)[0]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def evidence(*names) -> list[dict]:
    return [{"name": n, "sha256": sha(n)} for n in (names or ("forest-right certificate.pdf",))]


def make_run(parcels_figures: dict, *, price_per_t_c=None, currency="") -> AccountingRun:
    """A succeeded run with one result per parcel: {parcel: (stock_t_c, ci95_low_t_c, ci95_high_t_c)}."""
    raster, _ = Raster.objects.get_or_create(sha256="ab" * 32, defaults=dict(
        file="x.tif", original_name="x.tif", size_bytes=1, epoch=2025, legend={"name": "test"}, width=1, height=1,
        dtype="uint8", crs_wkt="", transform=[10, 0, 0, 0, -10, 0], class_pixel_counts={}))
    method, _ = MethodVersion.objects.get_or_create(parameters_sha256="cd" * 32,
                                                    defaults=dict(kind="pool_table", parameters={"pools": []}))
    run = AccountingRun.objects.create(method_version=method, raster=raster, status=AccountingRun.SUCCEEDED,
                                       input_raster_sha256=[raster.sha256], method_sha256=method.parameters_sha256,
                                       code_version="test", price_per_t_c=price_per_t_c, currency=currency)
    for parcel, (stock, low, high) in parcels_figures.items():
        run.parcels.add(parcel)
        ParcelResult.objects.create(run=run, parcel=parcel, area_ha=parcel.area_ha, stock_t_c=stock,
                                    stock_co2e_t=stock * 44 / 12, stock_ci95_low_t_c=low, stock_ci95_high_t_c=high,
                                    figures={"stock_tC": stock})
    return run


def ledger_state() -> tuple[int, list]:
    """What 'changes nothing' compares: the entry count and every registry projection."""
    return Entry.objects.count(), projection.registry_projection()


@pytest.fixture
def roles(api_user):
    """Users of each role, the bank and exchange with their parties, and a rights holder (a collective)."""
    bureau_user, bureau = api_user("bureau", county=COUNTY, username="bureau-pingwu")
    _, other_bureau = api_user("bureau", county=OTHER_COUNTY, username="bureau-beichuan")
    bank_user, bank = api_user("bank", username="bank-a")
    bank2_user, bank2 = api_user("bank", username="bank-b")
    exchange_user, exchange = api_user("exchange", username="exchange")
    _, auditor = api_user("auditor", username="auditor")
    holder = registry.party_create(kind="collective", name="Guanba village collective", uscc="91350100M000100Y43")
    buyer = registry.party_create(kind="company", name="Tencent Technology (Shenzhen)", uscc="9144030071526726XG")
    bank_party = registry.party_create(kind="bank", name="Bank A", uscc="914403001922038216", user=bank_user)
    bank2_party = registry.party_create(kind="bank", name="Bank B", uscc="91330100799655058B", user=bank2_user)
    exchange_party = registry.party_create(kind="exchange", name="Exchange", uscc="91110000802100433B",
                                           user=exchange_user)

    class Roles:
        pass

    r = Roles()
    r.bureau, r.other_bureau, r.bank, r.bank2, r.exchange, r.auditor = (bureau, other_bureau, bank, bank2,
                                                                        exchange, auditor)
    r.bureau_user, r.bank_user = bureau_user, bank_user
    r.holder, r.buyer, r.bank_party, r.bank2_party, r.exchange_party = (holder, buyer, bank_party, bank2_party,
                                                                        exchange_party)
    return r
