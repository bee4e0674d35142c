"""Page fixtures: users of each role with passwords (the pages sign in with a session), a fresh signing key."""

import json
from decimal import Decimal

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.transform import Affine

from accounting.methods import pool_table_read
from accounting.models import AccountingRun
from accounting.services import accounting_run_create, method_version_create
from geo.legends import builtin_legend
from geo.models import Parcel
from geo.services import parcel_import, raster_ingest
from ledger.registry import services as registry
from tests.geo.helpers import write_tif

COUNTY = "510727"
PASSWORD = "correct horse battery staple 9"
# Densities, t C/ha (CLCD codes): forest 240, grassland 72.5.
POOL_TABLE_CSV = "lucode,LULC_Name,c_above,c_below,c_soil,c_dead\n2,Forest,120,30,80,10\n4,Grassland,2.5,10,60,0\n"


@pytest.fixture(autouse=True)
def ledger_key_file(settings, tmp_path):
    """Each test signs with a fresh key in its own folder, never the developer's var/keys/."""
    settings.LEDGER_SIGNING_KEY_FILE = None
    settings.LEDGER_SIGNING_KEY = None
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEDGER_ORIGIN = "tanhui.local/test-registry"
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 3600
    settings.PLEDGE_LTV_LIMIT_PCT = "50"


@pytest.fixture
def page_user(db):
    """Factory: page_user("bank") -> a user of that role whose password is PASSWORD (bureau users in 510727)."""
    from geo.accounts import api_user_create

    def make(role: str, username: str | None = None, county: str | None = None):
        county = county or (COUNTY if role == "bureau" else None)
        user, _ = api_user_create(username=username or f"{role}-user", role=role, county_code=county,
                                  password=PASSWORD)
        return user

    return make


def county_raster(path, *, second_epoch=False):
    """A 200 x 200 10 m raster in UTM 48N near Pingwu: the west half forest (2), the east half grassland (4)."""
    classes = np.full((200, 200), 4, np.uint8)
    classes[:, :100] = 2
    if second_epoch:
        classes[:20, :20] = 4
    return write_tif(path, classes, crs="EPSG:32648", transform=Affine(10, 0, 452_000, 0, -10, 3_586_000))


def parcels_geojson(path=None, codes=("F-1", "G-1")) -> dict:
    """Two parcels inside county_raster: one forest block, one grassland block, in WGS84."""
    to_lonlat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
    boxes = [(452_005, 3_584_505, 452_495, 3_585_995), (453_505, 3_584_505, 453_995, 3_585_995)]
    features = []
    for code, (x0, y0, x1, y1) in zip(codes, boxes, strict=False):
        ring = [list(to_lonlat.transform(x, y)) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]
        features.append({"type": "Feature", "properties": {"code": code, "county": COUNTY, "name": f"parcel {code}"},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    collection = {"type": "FeatureCollection", "features": features}
    if path is not None:
        path.write_text(json.dumps(collection))
    return collection


@pytest.fixture
def county(page_user, tmp_path, settings, django_capture_on_commit_callbacks):
    """A bureau's county with a succeeded run, one confirmed and valued asset and a bank party."""
    bureau = page_user("bureau")
    bank_user = page_user("bank")
    raster, _ = raster_ingest(source_path=county_raster(tmp_path / "r.tif"), original_name="r.tif", epoch=2020,
                              legend=builtin_legend("clcd"))
    parcel_import(feature_collection=parcels_geojson(), allowed_county=COUNTY)
    method, _ = method_version_create(kind="pool_table",
                                      parameters={"pools": pool_table_read(POOL_TABLE_CSV).as_parameters()})
    with django_capture_on_commit_callbacks(execute=True):
        run = accounting_run_create(method_version=method, raster=raster, parcels=Parcel.objects.all(),
                                    county_code=COUNTY)
    run.refresh_from_db()
    assert run.status == AccountingRun.SUCCEEDED, run.failure_reason
    holder = registry.party_create(kind="collective", name="Guanba village collective", uscc="91350100M000100Y43")
    bank = registry.party_create(kind="bank", name="Bank A", uscc="914403001922038216", user=bank_user)
    asset = registry.asset_register(parcel=Parcel.objects.get(code="F-1"), rights_type="forest_land_ownership",
                                    holder=holder, evidence=[], county_code=COUNTY)
    registry.asset_confirm(asset=asset, county_code=COUNTY)
    registry.asset_value(asset=asset, run=run, county_code=COUNTY, price_per_t_co2e=Decimal(85), currency="CNY")
    return type("County", (), {"bureau": bureau, "bank_user": bank_user, "bank": bank, "run": run, "asset": asset,
                               "holder": holder})
