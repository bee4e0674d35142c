from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from geo.counties import CountyCodeError, validate_county_code


def _county_code_validator(value: str) -> None:
    try:
        validate_county_code(value)
    except CountyCodeError as exc:
        raise ValidationError(str(exc)) from None


class CountyMembership(models.Model):
    """The county (GB/T 2260 code) a bureau user registers in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="county_membership")
    county_code = models.CharField(max_length=6, validators=[_county_code_validator])

    def __str__(self) -> str:
        return f"{self.user} @ {self.county_code}"


def user_county_code(user) -> str | None:
    membership = getattr(user, "county_membership", None) if user.is_authenticated else None
    return membership.county_code if membership else None


class Raster(models.Model):
    """An ingested land-cover raster: its facts, and a normalised COG copy under MEDIA_ROOT named by the upload's
    hash. Two hashes: `sha256` names the uploaded bytes, `normalised_sha256` the copy's bytes, which runs read."""

    sha256 = models.CharField(max_length=64, unique=True, help_text="sha256 of the uploaded bytes")
    file = models.CharField(max_length=255, help_text="normalised copy, relative to MEDIA_ROOT")
    normalised_sha256 = models.CharField(max_length=64, blank=True,
                                         help_text="sha256 of the normalised copy's bytes: what a run reads; blank "
                                                   "only for a raster whose copy was missing when this was added")
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    epoch = models.PositiveSmallIntegerField(help_text="year the land cover describes")
    legend = models.JSONField(help_text="the legend as used: name, source, classes with IPCC categories")
    band = models.PositiveSmallIntegerField(default=1, help_text="band of the upload that holds land cover")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    dtype = models.CharField(max_length=16)
    nodata = models.FloatField(null=True)
    crs_wkt = models.TextField()
    epsg = models.PositiveIntegerField(null=True)
    transform = models.JSONField(help_text="affine a, b, c, d, e, f")
    class_pixel_counts = models.JSONField(help_text="{class code: pixel count}, nodata excluded")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"raster {self.id} ({self.epoch}, {self.legend.get('name')})"

    @property
    def path(self):
        return settings.MEDIA_ROOT / self.file


class ParcelQuerySet(models.QuerySet):
    def intersecting_bbox(self, min_lon: float, min_lat: float, max_lon: float, max_lat: float):
        """Parcels whose bounding box meets the given WGS84 box."""
        return self.filter(min_lon__lte=max_lon, max_lon__gte=min_lon, min_lat__lte=max_lat, max_lat__gte=min_lat)


class Parcel(models.Model):
    """A land parcel: its geometry in WGS84 (GeoJSON, RFC 7946), bounding box, and geodesic area."""

    county_code = models.CharField(max_length=6, validators=[_county_code_validator], db_index=True)
    code = models.CharField(max_length=64, help_text="forest-right certificate number or other parcel number")
    name = models.CharField(max_length=255, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="free attributes the methods may read")
    geometry = models.JSONField(help_text="GeoJSON Polygon or MultiPolygon, WGS84 longitude/latitude")
    min_lon = models.FloatField(db_index=True)
    min_lat = models.FloatField(db_index=True)
    max_lon = models.FloatField(db_index=True)
    max_lat = models.FloatField(db_index=True)
    area_ha = models.FloatField(help_text="geodesic area on the WGS84 ellipsoid, hectares")
    source_crs = models.TextField(default="EPSG:4326", help_text="the CRS the file's coordinates were in, as given "
                                                                 "(an authority code or a WKT)")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ParcelQuerySet.as_manager()

    class Meta:
        ordering = ["county_code", "code"]
        constraints = [models.UniqueConstraint(fields=["county_code", "code"], name="parcel_code_unique_in_county")]

    def __str__(self) -> str:
        return f"parcel {self.county_code}/{self.code}"
