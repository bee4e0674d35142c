"""Raster.normalised_sha256: the sha256 of the normalised copy a run reads, beside that of the upload.

Existing rasters get the hash of their stored copy, read from MEDIA_ROOT; a raster whose copy is missing keeps a
blank hash (a run cannot read it either). Reversing drops the column, and with it only these hashes.
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.db import migrations, models

CHUNK_BYTES = 4 * 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def hash_stored_copies(apps, schema_editor):
    Raster = apps.get_model("geo", "Raster")
    for raster in Raster.objects.using(schema_editor.connection.alias).only("id", "file").iterator():
        path = Path(settings.MEDIA_ROOT) / raster.file
        if path.is_file():
            raster.normalised_sha256 = _sha256(path)
            raster.save(update_fields=["normalised_sha256"])


class Migration(migrations.Migration):

    dependencies = [
        ('geo', '0002_rasters_parcels'),
    ]

    operations = [
        migrations.AddField(
            model_name='raster',
            name='normalised_sha256',
            field=models.CharField(blank=True, help_text="sha256 of the normalised copy's bytes: what a run reads; blank only for a raster whose copy was missing when this was added", max_length=64),
        ),
        migrations.RunPython(hash_stored_copies, migrations.RunPython.noop),
    ]
