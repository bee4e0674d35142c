"""Raster ingestion over REST and the command line: facts recorded, normalised copy, and every refusal."""

import io
import json

import numpy as np
import pytest
import rasterio
from django.core.management import call_command
from django.core.management.base import CommandError
from rasterio.transform import Affine

from geo.models import Raster
from tests.conftest import shared_path
from tests.geo.helpers import media_files, write_tif

pytestmark = pytest.mark.django_db


def upload(client, path, **fields):
    with open(path, "rb") as handle:
        return client.post("/api/rasters/", {"file": handle, **fields}, format="multipart")


@pytest.fixture
def bureau(api_user):
    return api_user("bureau")[1]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_real_nrcan_raster_is_registered_with_its_facts(bureau, media):
    source = shared_path("data", "nrcan_CAN_LC_2015_example.tif")
    response = upload(bureau, source, epoch=2015, legend="nrcan-lc2015")
    assert response.status_code == 201, response.content
    body = response.json()
    # Facts as ../shared/data/SOURCES.md gives them (measured there with GDAL 3.6.2).
    assert body["epsg"] == 3978
    assert (body["width"], body["height"]) == (652, 367)
    assert body["transform"] == pytest.approx([30.0, 0.0, -1494020.0, 0.0, -30.0, 730500.0], abs=1e-6)
    assert body["class_pixel_counts"] == {
        "1": 125065, "2": 7371, "5": 703, "6": 8942, "8": 9067, "10": 31988, "11": 40, "12": 7, "14": 347,
        "16": 31243, "17": 1456, "18": 23017, "19": 38,
    }
    assert body["size_bytes"] == 37120
    import hashlib

    assert body["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()

    raster = Raster.objects.get(id=body["id"])
    assert media_files(media) == [f"rasters/{body['sha256']}.tif"]
    with rasterio.open(source) as original, rasterio.open(raster.path) as normalised:
        assert normalised.profile["tiled"] is True
        assert normalised.block_shapes[0] == (512, 512)
        assert normalised.compression.name == "deflate"
        assert normalised.transform == original.transform
        assert normalised.crs == original.crs
        assert np.array_equal(normalised.read(1), original.read(1))


def test_same_bytes_twice_are_one_raster(bureau, media, tmp_path):
    path = write_tif(tmp_path / "a.tif", np.array([[10, 20], [30, 10]], dtype=np.uint8))
    first = upload(bureau, path, epoch=2020, legend="esa-worldcover")
    second = upload(bureau, path, epoch=2020, legend="esa-worldcover")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Raster.objects.count() == 1


def test_same_bytes_with_another_epoch_conflict(bureau, media, tmp_path):
    path = write_tif(tmp_path / "a.tif", np.array([[10, 20], [30, 10]], dtype=np.uint8))
    first_id = upload(bureau, path, epoch=2020, legend="esa-worldcover").json()["id"]
    response = upload(bureau, path, epoch=2021, legend="esa-worldcover")
    assert response.status_code == 409
    assert response.json()["detail"] == f"these bytes are already raster {first_id} with epoch 2020, not 2021"


def _no_crs(tmp_path):
    return write_tif(tmp_path / "x.tif", np.ones((2, 2), np.uint8), crs=None)


def _rotated(tmp_path):
    return write_tif(tmp_path / "x.tif", np.ones((2, 2), np.uint8), transform=Affine(10, 2, 400_000, 2, -10, 3e6))


def _no_transform(tmp_path):
    path = tmp_path / "x.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8", crs="EPSG:32648") as out:
        out.write(np.ones((1, 2, 2), np.uint8))
    return path


def _two_bands(tmp_path):
    return write_tif(tmp_path / "x.tif", np.ones((2, 2, 2), np.uint8))


def _float_band(tmp_path):
    return write_tif(tmp_path / "x.tif", np.ones((2, 2), np.float32))


def _unknown_classes(tmp_path):
    return write_tif(tmp_path / "x.tif", np.array([[10, 33], [41, 20]], np.uint8))


def _not_a_raster(tmp_path):
    path = tmp_path / "x.tif"
    path.write_text("parcel code,area\nA-1,3.5\n")
    return path


@pytest.mark.parametrize(
    ("make", "fields", "detail"),
    [
        (_not_a_raster, {}, 'not a GeoTIFF: the file starts with "parc" (70 61 72 63), not a TIFF signature (II*, '
                            "MM*, or II+, MM+ for BigTIFF); only GeoTIFF and Cloud Optimized GeoTIFF are accepted"),
        (_no_crs, {}, "the raster has no CRS (coordinate reference system); georeference it first"),
        (_rotated, {}, "the raster's geotransform is rotated (b=2.0, d=2.0); warp it to a north-up grid first"),
        (_no_transform, {}, "the raster has no geotransform (pixel size and origin); georeference it first"),
        (_two_bands, {}, "the raster has 2 bands; say which holds land cover (band)"),
        (_two_bands, {"band": 3}, "band 3 does not exist; the raster has 2 band(s)"),
        (_float_band, {}, "land cover must be an integer band; band 1 is float32"),
        (_unknown_classes, {}, "legend 'esa-worldcover' does not define classes present in the raster: 33, 41"),
    ],
    ids=["not-a-raster", "no-crs", "rotated", "no-transform", "two-bands", "band-out-of-range", "float",
         "legend-gaps"],
)
def test_bad_raster_is_422_and_leaves_nothing(bureau, media, tmp_path, make, fields, detail):
    response = upload(bureau, make(tmp_path), epoch=2020, legend="esa-worldcover", **fields)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == detail
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_legend_gaps_list_the_codes(bureau, media, tmp_path):
    response = upload(bureau, _unknown_classes(tmp_path), epoch=2020, legend="esa-worldcover")
    assert response.json()["missing_codes"] == [33, 41]


def test_band_chosen_from_a_multiband_file(bureau, media, tmp_path):
    bands = np.stack([np.full((3, 3), 1, np.uint8), np.array([[2, 2, 4], [4, 4, 4], [9, 9, 2]], np.uint8)])
    response = upload(bureau, write_tif(tmp_path / "x.tif", bands), epoch=2020, legend="clcd", band=2)
    assert response.status_code == 201, response.content
    assert response.json()["class_pixel_counts"] == {"2": 3, "4": 4, "9": 2}
    with rasterio.open(Raster.objects.get().path) as normalised:
        assert normalised.count == 1
        assert normalised.read(1).tolist() == [[2, 2, 4], [4, 4, 4], [9, 9, 2]]


def test_nodata_is_left_out_of_the_histogram(bureau, media, tmp_path):
    path = write_tif(tmp_path / "x.tif", np.array([[0, 0, 2], [4, 0, 2]], np.uint8), nodata=0)
    response = upload(bureau, path, epoch=2020, legend="clcd")
    assert response.json()["class_pixel_counts"] == {"2": 2, "4": 1}
    assert response.json()["nodata"] == 0


def test_custom_legend_as_invest_style_table(bureau, media, tmp_path):
    path = write_tif(tmp_path / "x.tif", np.array([[1, 2], [2, 7]], np.uint8))
    table = io.BytesIO(b"LUCODE,Name,IPCC_Category\n1,Conifer,forest_land\n2,Meadow,grassland\n7,Town,settlements\n")
    table.name = "legend.csv"
    with open(path, "rb") as handle:
        response = bureau.post("/api/rasters/", {"file": handle, "epoch": 2020, "legend": "custom",
                                                 "legend_file": table}, format="multipart")
    assert response.status_code == 201, response.content
    classes = {c["code"]: c["ipcc_category"] for c in response.json()["legend"]["classes"]}
    assert classes == {1: "forest_land", 2: "grassland", 7: "settlements"}


def test_custom_legend_without_ipcc_category_is_refused(bureau, media, tmp_path):
    path = write_tif(tmp_path / "x.tif", np.array([[1, 2]], np.uint8))
    table = io.BytesIO(b"lucode,name\n1,Conifer\n2,Meadow\n")
    table.name = "legend.csv"
    with open(path, "rb") as handle:
        response = bureau.post("/api/rasters/", {"file": handle, "epoch": 2020, "legend": "custom",
                                                 "legend_file": table}, format="multipart")
    assert response.status_code == 422
    assert "needs an 'ipcc_category' column" in response.json()["detail"]
    assert media_files(media) == []


def test_unknown_legend_is_refused(bureau, media, tmp_path):
    path = write_tif(tmp_path / "x.tif", np.array([[1, 2]], np.uint8))
    response = upload(bureau, path, epoch=2020, legend="corine")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("unknown legend 'corine'; built in: clcd, esa-worldcover, ipcc-6")


def test_oversized_raster_is_413(bureau, media, tmp_path, settings):
    settings.MAX_RASTER_BYTES = 1000
    path = write_tif(tmp_path / "x.tif", np.zeros((40, 40), np.uint8))
    response = upload(bureau, path, epoch=2020, legend="clcd")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_only_bureau_may_upload(api_user, media, tmp_path):
    _, bank = api_user("bank")
    path = write_tif(tmp_path / "x.tif", np.array([[1, 2]], np.uint8))
    response = upload(bank, path, epoch=2020, legend="clcd")
    assert response.status_code == 403
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_any_role_may_read(api_user, bureau, media, tmp_path):
    raster_id = upload(bureau, write_tif(tmp_path / "x.tif", np.array([[1, 2]], np.uint8)), epoch=2020,
                       legend="clcd").json()["id"]
    _, auditor = api_user("auditor")
    assert auditor.get(f"/api/rasters/{raster_id}/").json()["class_pixel_counts"] == {"1": 1, "2": 1}
    assert auditor.get("/api/rasters/").json()["count"] == 1
    assert auditor.get("/api/rasters/999/").status_code == 404


def test_ingest_raster_command(media, tmp_path, capsys):
    path = write_tif(tmp_path / "x.tif", np.array([[4, 4], [2, 4]], np.uint8))
    call_command("ingest_raster", str(path), "--epoch", "2020", "--legend", "clcd")
    raster_id = int(capsys.readouterr().out.strip())
    assert Raster.objects.get(id=raster_id).class_pixel_counts == {"2": 1, "4": 3}


def test_ingest_raster_command_refuses_with_a_message(media, tmp_path):
    with pytest.raises(CommandError, match=r"^land cover must be an integer band; band 1 is float32$"):
        call_command("ingest_raster", str(_float_band(tmp_path)), "--epoch", "2020", "--legend", "clcd")
    with pytest.raises(CommandError, match="no such file"):
        call_command("ingest_raster", str(tmp_path / "missing.tif"), "--epoch", "2020", "--legend", "clcd")
    assert Raster.objects.count() == 0
    assert media_files(media) == []


def test_ingest_raster_command_with_legend_file(media, tmp_path, capsys):
    legend = tmp_path / "pingwu.json"
    legend.write_text(json.dumps({"name": "pingwu", "classes": [
        {"code": 1, "name": "Forest", "ipcc_category": "forest_land"},
        {"code": 2, "name": "Meadow", "ipcc_category": "Grassland"}]}))
    path = write_tif(tmp_path / "x.tif", np.array([[1, 2]], np.uint8))
    call_command("ingest_raster", str(path), "--epoch", "2020", "--legend", str(legend))
    raster = Raster.objects.get(id=int(capsys.readouterr().out.strip()))
    assert raster.legend["name"] == "pingwu"
    assert [c["ipcc_category"] for c in raster.legend["classes"]] == ["forest_land", "grassland"]


def test_ingest_records_the_sha256_of_the_normalised_copy(bureau, media, tmp_path):
    """Two hashes: the upload's (its bytes as sent) and the stored copy's (the bytes runs read), both by hashlib."""
    import hashlib

    source = write_tif(tmp_path / "lc.tif", np.full((40, 30), 2, np.uint8))
    body = upload(bureau, source, epoch=2020, legend="clcd").json()
    raster = Raster.objects.get(id=body["id"])
    assert raster.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert raster.normalised_sha256 == hashlib.sha256(raster.path.read_bytes()).hexdigest()
    assert raster.normalised_sha256 != raster.sha256  # the copy is a tiled, compressed COG: other bytes
