import logging

from django.apps import AppConfig

from geo.scratch import scratch_sweep

logger = logging.getLogger(__name__)


class GeoConfig(AppConfig):
    name = "geo"
    verbose_name = "Rasters and parcels"

    def ready(self):
        # What a killed process left in its scratch folder under MEDIA_ROOT/tmp (geo.scratch) goes as each starts.
        try:
            scratch_sweep()
        except OSError:
            logger.exception("could not sweep the scratch folders under MEDIA_ROOT/tmp")
