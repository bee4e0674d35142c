from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from geo.errors import RasterError
from geo.legends import BUILTIN_LEGENDS, LegendError, builtin_legend, legend_from_file
from geo.services import raster_ingest


class Command(BaseCommand):
    help = "Validate and register a land-cover GeoTIFF; prints the raster id."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--epoch", type=int, required=True, help="year the land cover describes")
        parser.add_argument("--legend", required=True,
                            help=f"built-in legend ({', '.join(sorted(BUILTIN_LEGENDS))}) or a JSON/CSV legend file")
        parser.add_argument("--band", type=int, help="band holding land cover (required for multi-band files)")

    def handle(self, *args, path, epoch, legend, band, **options):
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            if legend in BUILTIN_LEGENDS:
                chosen = builtin_legend(legend)
            elif Path(legend).is_file():
                chosen = legend_from_file(Path(legend).read_bytes(), name=Path(legend).stem)
            else:
                chosen = builtin_legend(legend)  # raises, listing the built-in names
            raster, created = raster_ingest(source_path=source, original_name=source.name, epoch=epoch,
                                            legend=chosen, band=band)
        except (RasterError, LegendError) as exc:
            raise CommandError(str(exc)) from None
        verb = "registered" if created else "already registered as"
        self.stderr.write(f"{verb} raster {raster.id}: {raster.width} x {raster.height} px, epoch {raster.epoch}, "
                          f"sha256 {raster.sha256}")
        self.stdout.write(str(raster.id))
