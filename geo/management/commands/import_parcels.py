from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.common.errors import JSONInputError
from config.common.jsonlimits import json_loads
from geo.errors import ParcelError
from geo.services import parcel_import


class Command(BaseCommand):
    help = "Import a GeoJSON FeatureCollection of parcels (all or nothing); prints how many were imported."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--crs", help="CRS of the coordinates, e.g. EPSG:4490 or EPSG:4545 (default WGS84)")

    def handle(self, *args, file, crs, **options):
        try:
            data = json_loads(Path(file).read_bytes().removeprefix(b"\xef\xbb\xbf"))
        except FileNotFoundError:
            raise CommandError(f"no such file: {file}") from None
        except JSONInputError as exc:
            raise CommandError(f"{file} is not JSON: {exc}") from None
        try:
            parcels = parcel_import(feature_collection=data, crs=crs)
        except ParcelError as exc:
            lines = [f"  feature {p['index']} ({p['code'] or 'no code'}): {p['detail']}" for p in exc.problems]
            raise CommandError(f"nothing imported; {len(exc.problems)} bad feature(s):\n" + "\n".join(lines)) from None
        total_ha = sum(p.area_ha for p in parcels)
        self.stdout.write(f"imported {len(parcels)} parcels, {total_ha:.4f} ha")
