"""The demo county: a Pingwu-like county (510727) generated from code and a fixed seed, loaded through the services.

Everything is made here, nothing downloaded: two 10 m land-cover rasters (CLCD codes) in UTM zone 48N
(EPSG:32648) near 104.5°E, 32.4°N, a few hundred Voronoi parcels, parties with valid unified social credit codes,
a pool-table method, one accounting run over both epochs, registered, confirmed and valued assets, and one pledge.
Because each step calls the services, every change is on the ledger and `verify_ledger` passes afterwards.

The carbon densities are ILLUSTRATIVE: round numbers of the order that inventory-based studies report for the
subtropical mountain forests, shrublands and alpine meadows of western Sichuan (forest biomass carbon of some tens
of t C/ha, soil carbon of about 100 t C/ha). They are not taken from a table and must not be used for reporting.
"""

import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import numpy as np
import rasterio
import shapely
from django.conf import settings
from django.contrib.auth import get_user_model
from rasterio.transform import Affine
from shapely.geometry import MultiPoint, box, mapping

from accounting.methods.valuation import ValuationTerms
from accounting.models import AccountingRun
from accounting.services import accounting_run_create, method_version_create
from config.common.roles import AUDITOR, BANK, BUREAU, EXCHANGE
from geo.accounts import api_user_create
from geo.legends import builtin_legend
from geo.models import Parcel
from geo.services import parcel_import, raster_ingest
from ledger.log.services import checkpoint_sign_latest
from ledger.registry import services as registry
from ledger.registry.models import Asset, Party, Pledge
from ledger.registry.uscc import uscc_check_character

COUNTY = "510727"  # Pingwu County, Mianyang, Sichuan
SEED = 20260510
CRS = "EPSG:32648"  # WGS 84 / UTM zone 48N
PIXEL_M = 10
ROWS, COLS = 900, 1200  # 9 km × 12 km: 10,800 ha
ORIGIN = (446_000.0, 3_590_500.0)  # upper-left corner, metres: about 104.42°E, 32.44°N
EPOCHS = (2015, 2025)
PARCEL_COUNT = 300
# CLCD class codes (geo.legends "clcd").
CROPLAND, FOREST, SHRUB, GRASSLAND, WATER, IMPERVIOUS = 1, 2, 3, 4, 5, 8

# Illustrative densities, t C/ha (see the module docstring): above-ground, below-ground, soil, dead organic matter.
POOLS = [
    {"lucode": CROPLAND, "lulc_name": "Cropland", "c_above": 5.0, "c_below": 1.0, "c_soil": 55.0, "c_dead": 0.0},
    {"lucode": FOREST, "lulc_name": "Forest", "c_above": 62.0, "c_below": 15.0, "c_soil": 105.0, "c_dead": 6.0},
    {"lucode": SHRUB, "lulc_name": "Shrub", "c_above": 14.0, "c_below": 7.0, "c_soil": 80.0, "c_dead": 2.0},
    {"lucode": GRASSLAND, "lulc_name": "Grassland", "c_above": 3.0, "c_below": 12.0, "c_soil": 95.0, "c_dead": 0.0},
    {"lucode": WATER, "lulc_name": "Water", "c_above": 0.0, "c_below": 0.0, "c_soil": 0.0, "c_dead": 0.0},
    {"lucode": IMPERVIOUS, "lulc_name": "Impervious", "c_above": 0.0, "c_below": 0.0, "c_soil": 15.0, "c_dead": 0.0},
]
UNCERTAINTY_PCT = {"area": 5.0, "c_above": 25.0, "c_below": 35.0, "c_soil": 30.0, "c_dead": 50.0}
METHOD_NAME = "Demo county pools (illustrative)"
PRICE_PER_T_C = Decimal("311.67")  # CNY: 85 CNY per t CO2e × 44/12, for the run's stock value
PRICE_PER_T_CO2E = Decimal("85")  # CNY, for the assets' valuations
CURRENCY = "CNY"
DISCOUNT_RATE_PCT = Decimal("3")

DEMO_USERS = (("pingwu-bureau", BUREAU), ("demo-bank", BANK), ("demo-exchange", EXCHANGE),
              ("demo-auditor", AUDITOR))


def _uscc(first17: str) -> str:
    return first17 + uscc_check_character(first17)


# Registration authority and category (2), division (6), organisation code (9), then the check character.
COLLECTIVE = ("collective", "平武县示范村股份经济合作联合社", _uscc("N2" + COUNTY + "MF0000001"))
COMPANY = ("company", "平武示范林业发展有限公司", _uscc("91" + COUNTY + "MA6AT0001"))
BANK_PARTY = ("bank", "绵阳示范农村商业银行", _uscc("91510700" + "MA6BK0002"))
EXCHANGE_PARTY = ("exchange", "四川示范环境权益交易所", _uscc("91510100" + "MA6EX0003"))
HOUSEHOLDS = ("王建国户", "李秀英户", "杨德明户", "赵春华户")
SPECIES = ("冷杉 Abies fabri", "云杉 Picea asperata", "桦木 Betula", "栎类 Quercus", "华山松 Pinus armandii")


@dataclass
class DemoReport:
    already_loaded: bool = False
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # username -> (role, password)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- the land -----------------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise (filtered in the frequency domain), scaled to mean 0 and sd 1."""
    noise = rng.standard_normal((ROWS, COLS))
    fy = np.fft.fftfreq(ROWS)[:, None]
    fx = np.fft.rfftfreq(COLS)[None, :]
    transfer = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (fx ** 2 + fy ** 2))
    smooth = np.fft.irfft2(np.fft.rfft2(noise) * transfer, s=(ROWS, COLS))
    return (smooth - smooth.mean()) / smooth.std()


def land_cover(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Two epochs of land cover, (ROWS, COLS) uint8 CLCD codes: a river valley with a town and terraced cropland,
    forest on the slopes, shrub at the forest edge, alpine grassland on the ridges. The second epoch has cropland
    on steep ground turned to forest (grain for green), shrub grown into forest, and a larger town."""
    rng = np.random.default_rng(seed)
    large, middle, small = _smooth_noise(rng, 60), _smooth_noise(rng, 18), _smooth_noise(rng, 5)
    rows, cols = np.mgrid[0:ROWS, 0:COLS]
    river_row = ROWS * 0.58 + 70 * np.sin(2 * np.pi * cols / 760) + 22 * np.sin(2 * np.pi * cols / 250 + 1.0)
    distance_px = np.abs(rows - river_row)
    elevation = distance_px / ROWS * 3.0 + 0.55 * large + 0.25 * middle + 0.08 * small
    town = ((cols - 420) / 55.0) ** 2 + ((rows - river_row) / 30.0) ** 2 + 0.15 * small

    first = np.full((ROWS, COLS), FOREST, np.uint8)
    high, shrub_edge, low = np.quantile(elevation, [0.88, 0.76, 0.14])
    first[elevation > shrub_edge] = SHRUB
    first[elevation > high] = GRASSLAND
    first[(elevation > low) & (elevation < low + 0.12) & (middle > 0.6)] = SHRUB
    first[(elevation < low) & (distance_px < 220)] = CROPLAND
    first[(small > 1.9) & (first == FOREST)] = GRASSLAND  # clearings
    first[town < 1.0] = IMPERVIOUS
    first[distance_px < 2.5 + 0.8 * small] = WATER

    second = first.copy()
    steep_crops = (first == CROPLAND) & (elevation > low - 0.18) & (middle > -0.2)
    second[steep_crops] = FOREST
    second[(first == SHRUB) & (middle < -0.3) & (elevation < high)] = FOREST
    second[(town < 1.5) & (first != WATER)] = IMPERVIOUS
    return first, second


def write_land_cover(path: Path, classes: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=COLS, height=ROWS, count=1, dtype="uint8", crs=CRS,
                       transform=Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1]), nodata=0,
                       compress="deflate", tiled=True, blockxsize=256, blockysize=256) as out:
        out.write(classes, 1)
    return path


def parcel_collection(seed: int = SEED) -> dict:
    """About PARCEL_COUNT Voronoi parcels covering the raster 50 m inside its edge, in EPSG:32648 metres."""
    rng = np.random.default_rng(seed + 1)
    x0, y1 = ORIGIN
    x1, y0 = x0 + COLS * PIXEL_M, y1 - ROWS * PIXEL_M
    extent = box(x0 + 50, y0 + 50, x1 - 50, y1 - 50)
    per_row = round((PARCEL_COUNT * COLS / ROWS) ** 0.5)
    per_col = round(PARCEL_COUNT / per_row)
    gx, gy = np.meshgrid((np.arange(per_row) + 0.5) / per_row, (np.arange(per_col) + 0.5) / per_col)
    jitter = rng.uniform(-0.42, 0.42, size=(2, *gx.shape))
    xs = x0 + (gx + jitter[0] / per_row) * (x1 - x0)
    ys = y0 + (gy + jitter[1] / per_col) * (y1 - y0)
    cells = shapely.voronoi_polygons(MultiPoint(np.column_stack([xs.ravel(), ys.ravel()])), extend_to=extent)
    polygons = [cell.intersection(extent) for cell in cells.geoms]
    polygons = sorted((p for p in polygons if p.area > 0), key=lambda p: (-round(p.centroid.y, -2), p.centroid.x))
    features = []
    for index, polygon in enumerate(polygons, start=1):
        polygon = shapely.set_precision(polygon, 0.01)
        compartment, sub = (index - 1) // 12 + 1, (index - 1) % 12 + 1
        features.append({"type": "Feature", "geometry": mapping(polygon), "properties": {
            "code": f"{COUNTY}-LQ-{index:04d}", "county": COUNTY, "name": f"林班 {compartment} 小班 {sub}",
            "dominant_species": SPECIES[index % len(SPECIES)], "origin": "planted" if index % 4 == 0 else "natural",
        }})
    return {"type": "FeatureCollection", "features": features}


# --- users and parties --------------------------------------------------------------------------------------------


def _passwords_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-users.json"


def _demo_users(report: DemoReport) -> dict[str, object]:
    stored = json.loads(_passwords_file().read_text()) if _passwords_file().exists() else {}
    users = {}
    model = get_user_model()
    for username, role in DEMO_USERS:
        user = model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(9)
            user, _ = api_user_create(username=username, role=role, password=password,
                                      county_code=COUNTY if role == BUREAU else None)
            stored[username] = password
        users[username] = user
        report.users[username] = (role, stored.get(username, "(not stored here; use manage.py changepassword)"))
    path = _passwords_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(stored, handle, ensure_ascii=False, indent=1)
    return users


def _party(kind: str, name: str, uscc: str | None = None, user=None) -> Party:
    existing = Party.objects.filter(uscc=uscc).first() if uscc else Party.objects.filter(kind=kind, name=name).first()
    return existing or registry.party_create(kind=kind, name=name, uscc=uscc, user=user)


# --- the whole demo -----------------------------------------------------------------------------------------------


def demo_loaded() -> bool:
    bank = Party.objects.filter(uscc=BANK_PARTY[2]).first()
    return bank is not None and Pledge.objects.filter(pledgee=bank).exists()


def _wait_for(run: AccountingRun, report: DemoReport) -> AccountingRun:
    """With a broker the run goes to a worker: wait for it (there is no time limit: a county can take a while)."""
    while run.status not in (AccountingRun.SUCCEEDED, AccountingRun.FAILED):
        time.sleep(0.5)
        run.refresh_from_db()
    if run.status == AccountingRun.FAILED:
        raise RuntimeError(f"the demo accounting run {run.id} failed: {run.failure_reason}")
    return run


def demo_load(*, log=print) -> DemoReport:
    """Load the demo county once; a second call changes nothing and says so. Returns who can sign in."""
    started = time.perf_counter()
    report = DemoReport()
    users = _demo_users(report)
    if demo_loaded():
        report.already_loaded = True
        report.seconds = time.perf_counter() - started
        return report

    collective = _party(*COLLECTIVE)
    company = _party(*COMPANY)
    households = [_party("household", name) for name in HOUSEHOLDS]
    bank = _party(*BANK_PARTY, user=users["demo-bank"])
    _party(*EXCHANGE_PARTY, user=users["demo-exchange"])
    bureau = users["pingwu-bureau"]
    log(f"parties: {Party.objects.count()}")

    legend = builtin_legend("clcd")
    rasters = []
    media_tmp = Path(settings.MEDIA_ROOT) / "tmp"
    media_tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=media_tmp) as folder:
        for epoch, classes in zip(EPOCHS, land_cover(), strict=True):
            path = write_land_cover(Path(folder) / f"pingwu-demo-{epoch}.tif", classes)
            raster, _ = raster_ingest(source_path=path, original_name=path.name, epoch=epoch, legend=legend,
                                      uploaded_by=bureau)
            rasters.append(raster)
    log(f"rasters: {', '.join(f'{r.id} ({r.epoch}, {r.width} x {r.height} px)' for r in rasters)}")

    collection = parcel_collection()
    codes = [f["properties"]["code"] for f in collection["features"]]
    if not Parcel.objects.filter(county_code=COUNTY, code__in=codes).exists():
        parcel_import(feature_collection=collection, crs=CRS, allowed_county=COUNTY)
    parcels = Parcel.objects.filter(county_code=COUNTY, code__in=codes)
    log(f"parcels: {parcels.count()}")

    method, _ = method_version_create(kind="pool_table", name=METHOD_NAME, created_by=bureau,
                                      parameters={"pools": POOLS, "uncertainty_pct": UNCERTAINTY_PCT})
    run = AccountingRun.objects.filter(method_version=method, raster=rasters[0], alt_raster=rasters[1],
                                       county_code=COUNTY, status=AccountingRun.SUCCEEDED).first()
    if run is None:
        run = accounting_run_create(
            method_version=method, raster=rasters[0], alt_raster=rasters[1], parcels=parcels, county_code=COUNTY,
            valuation=ValuationTerms(price_per_t_c=PRICE_PER_T_C, currency=CURRENCY,
                                     discount_rate_pct=DISCOUNT_RATE_PCT),
            created_by=bureau)
        run = _wait_for(run, report)
    log(f"accounting run {run.id}: {run.totals['stock_tC']:,.0f} t C over {run.totals['area_ha']:,.0f} ha")

    assets = _assets(run, parcels, collective=collective, company=company, households=households, bureau=bureau)
    log(f"assets: {len(assets)} ({sum(a.status == Asset.CONFIRMED for a in assets)} confirmed)")

    pledged = max((a for a in assets if a.valuation_id), key=lambda a: a.valuation.value_ci95_low_amount)
    limit = pledged.valuation.value_ci95_low_amount * Decimal(settings.PLEDGE_LTV_LIMIT_PCT) / 100
    amount = (limit * Decimal("0.8") / 1000).to_integral_value(rounding=ROUND_DOWN) * 1000
    pledge = registry.pledge_create(asset=pledged, pledgee=bank, amount=amount, currency=CURRENCY, term_months=36,
                                    created_by=users["demo-bank"])
    log(f"pledge {pledge.id}: {amount} {CURRENCY} on asset {pledged.code} to {bank.name}")
    checkpoint = checkpoint_sign_latest(force=True)
    if checkpoint is not None:
        log(f"checkpoint signed at {checkpoint.tree_size} entries")
    report.seconds = time.perf_counter() - started
    return report


def _assets(run, parcels, *, collective, company, households, bureau) -> list[Asset]:
    """Register 32 parcels (mostly forest, two grassland), confirm 28 and value those from the run."""
    results = {r.parcel_id: r for r in run.results.all()}

    def share(parcel, code):
        figures = results[parcel.id].figures
        return figures["class_area_ha"].get(str(code), 0.0) / max(figures["area_ha"], 1e-9)

    ordered = sorted(parcels, key=lambda p: p.code)
    forest = [p for p in ordered if share(p, FOREST) > 0.6][::5][:30]
    grass = [p for p in ordered if share(p, GRASSLAND) > 0.4][:2]
    holders = [(collective, "forest_land_ownership"), (company, "forest_tree_use")] + [
        (h, "forest_land_use") for h in households]
    assets = []
    for index, parcel in enumerate(forest + grass):
        holder, rights = holders[index % len(holders)]
        if parcel in grass:
            holder, rights = households[index % len(households)], "grassland_contract"
        asset = Asset.objects.filter(parcel=parcel).first()
        if asset is None:
            evidence = [{"name": f"林权证 {parcel.code}.pdf",
                         "sha256": hashlib.sha256(f"demo certificate {parcel.code}".encode()).hexdigest()}]
            asset = registry.asset_register(parcel=parcel, rights_type=rights, holder=holder, evidence=evidence,
                                            county_code=COUNTY, registered_by=bureau)
        if index < 28 and asset.status == Asset.REGISTERED:
            asset = registry.asset_confirm(asset=asset, county_code=COUNTY)
        if asset.status == Asset.CONFIRMED and asset.valuation_id is None:
            registry.asset_value(asset=asset, run=run, county_code=COUNTY, price_per_t_co2e=PRICE_PER_T_CO2E,
                                 currency=CURRENCY, valued_by=bureau)
            asset.refresh_from_db()
        assets.append(asset)
    return assets
