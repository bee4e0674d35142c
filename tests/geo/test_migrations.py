"""geo's data migrations, run forward from the state before them on rows written in that state."""

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("geo", "0002_rasters_parcels"), ("geo", "0003_raster_normalised_sha256")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def raster_row(Raster, sha256: str, file: str):
    return Raster.objects.create(
        sha256=sha256, file=file, original_name="lc.tif", size_bytes=1, epoch=2020, legend={"name": "clcd"},
        band=1, width=1, height=1, dtype="uint8", nodata=None, crs_wkt="", epsg=32648, transform=[1, 0, 0, 0, -1, 0],
        class_pixel_counts={"2": 1})


@pytest.mark.django_db(transaction=True)
def test_normalised_sha256_is_computed_from_each_stored_copy(settings, tmp_path):
    """A raster whose copy is under MEDIA_ROOT gets the copy's sha256; one whose copy is missing stays blank."""
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "rasters").mkdir(parents=True)
    stored = b"II*\x00 stored copy bytes" * 1000
    (settings.MEDIA_ROOT / "rasters" / "aa.tif").write_bytes(stored)
    try:
        old = migrate(BEFORE).get_model("geo", "Raster")
        present = raster_row(old, "aa" * 32, "rasters/aa.tif")
        missing = raster_row(old, "bb" * 32, "rasters/bb.tif")
        new = migrate(AFTER).get_model("geo", "Raster")
        assert new.objects.get(id=present.id).normalised_sha256 == hashlib.sha256(stored).hexdigest()
        assert new.objects.get(id=missing.id).normalised_sha256 == ""
        assert new.objects.get(id=present.id).sha256 == "aa" * 32  # the upload's hash is kept as it was
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
