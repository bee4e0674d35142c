"""Bundle fixtures: a valued asset with a released and an active pledge, interleaved with another asset's
entries and several signed checkpoints, and its bundle built as the API serves it."""

import hashlib
import json
from decimal import Decimal

import pytest
import rfc8785

from accounting.models import AccountingRun, MethodVersion, ParcelResult
from geo.models import Raster
from ledger.bundles.services import bundle_build, bundle_bytes
from ledger.log.services import checkpoint_sign_latest
from ledger.registry import services as registry
from tests.ledger.registry import conftest as registry_fixtures
from tests.ledger.registry.conftest import evidence, make_parcel

registry_settings = registry_fixtures.registry_settings  # fixtures shared with the registry tests
roles = registry_fixtures.roles

METHOD = {"kind": "pool_table", "parameters": {"pools": [{"name": "agb", "density_t_c_per_ha": 52.5}]}}


def run_with_method(parcel, stock_t_c: float, low_t_c: float, high_t_c: float) -> AccountingRun:
    """A succeeded run whose method version's hash is the real sha256 of its RFC 8785 parameters."""
    digest = hashlib.sha256(rfc8785.dumps(METHOD)).hexdigest()
    method, _ = MethodVersion.objects.get_or_create(parameters_sha256=digest, defaults=dict(
        kind=METHOD["kind"], parameters=METHOD["parameters"]))
    raster, _ = Raster.objects.get_or_create(sha256="ab" * 32, defaults=dict(
        file="x.tif", original_name="x.tif", size_bytes=1, epoch=2025, legend={"name": "test"}, width=1, height=1,
        dtype="uint8", crs_wkt="", transform=[10, 0, 0, 0, -10, 0], class_pixel_counts={}))
    run = AccountingRun.objects.create(method_version=method, raster=raster, status=AccountingRun.SUCCEEDED,
                                       input_raster_sha256=[raster.sha256], method_sha256=digest, code_version="test")
    run.parcels.add(parcel)
    ParcelResult.objects.create(run=run, parcel=parcel, area_ha=parcel.area_ha, stock_t_c=stock_t_c,
                                stock_co2e_t=stock_t_c * 44 / 12, stock_ci95_low_t_c=low_t_c,
                                stock_ci95_high_t_c=high_t_c, figures={"stock_tC": stock_t_c})
    return run


# An irregular forest parcel near Pingwu (lon, lat), about 1 km across, with a notch.
PARCEL = {"type": "Polygon", "coordinates": [[
    [104.500, 32.400], [104.508, 32.399], [104.512, 32.404], [104.509, 32.409], [104.5055, 32.4065],
    [104.503, 32.410], [104.498, 32.406], [104.500, 32.400]]]}
OTHER = {"type": "Polygon", "coordinates": [[[104.60, 32.40], [104.61, 32.40], [104.61, 32.41], [104.60, 32.41],
                                             [104.60, 32.40]]]}


@pytest.fixture
def scene(roles):
    """The asset (registered, confirmed, valued at 1000 t C, 95% 800-1200, 80 CNY per t CO2e), pledged to bank A
    (released) and then to bank B (active); another asset's entries between; checkpoints along the way, the last
    covering every entry."""
    parcel = make_parcel("PW-0001", PARCEL)
    asset = registry.asset_register(parcel=parcel, rights_type="forest_land_use", holder=roles.holder,
                                    evidence=evidence(), county_code="510727")
    checkpoint_sign_latest(force=True)
    other = registry.asset_register(parcel=make_parcel("PW-0002", OTHER), rights_type="forest_land_ownership",
                                    holder=roles.buyer, evidence=evidence("survey.pdf"), county_code="510727")
    registry.asset_confirm(asset=asset, county_code="510727")
    registry.asset_value(asset=asset, run=run_with_method(parcel, 1000.0, 800.0, 1200.0), county_code="510727",
                         price_per_t_co2e=Decimal("80"), currency="CNY")
    checkpoint_sign_latest(force=True)
    first = registry.pledge_create(asset=asset, pledgee=roles.bank_party, amount=Decimal("50000"), currency="CNY",
                                   term_months=36)
    registry.asset_confirm(asset=other, county_code="510727")
    checkpoint_sign_latest(force=True)
    registry.pledge_release(pledge=first, released_by=roles.bank_party)
    second = registry.pledge_create(asset=asset, pledgee=roles.bank2_party, amount=Decimal("60000"),
                                    currency="CNY", term_months=24)
    checkpoint_sign_latest(force=True)  # a bundle is proven only to a checkpoint already signed
    asset.refresh_from_db()

    class Scene:
        pass

    s = Scene()
    s.asset, s.other, s.first, s.second, s.roles = asset, other, first, second, roles
    return s


@pytest.fixture
def bundle(scene) -> dict:
    """The bundle as served: built, then through its canonical JSON bytes and back."""
    return json.loads(bundle_bytes(bundle_build(asset=scene.asset)))


@pytest.fixture
def registry_key(scene) -> str:
    from ledger.log.keys import signing_key_load

    return signing_key_load().verifier.vkey
