"""REST doorways for rasters and parcels: check the input, call one service, serialize the result."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import (
    PAGE_PARAMETERS,
    ConstantField,
    JSONParser,
    OpenObjectSerializer,
    Paged,
    page_of,
    page_response,
    paginated,
    problems,
)
from config.common.roles import BUREAU, role_required
from geo.errors import CountyScopeError, LegendError, gettext_noop
from geo.legends import BUILTIN_LEGENDS, builtin_legend, legend_from_file
from geo.models import Parcel, Raster, user_county_code
from geo.services import parcel_import, raster_ingest, upload_on_disk


class RasterOutput(serializers.ModelSerializer):
    class Meta:
        model = Raster
        fields = ["id", "sha256", "epoch", "legend", "band", "width", "height", "dtype", "nodata", "crs_wkt", "epsg",
                  "transform", "class_pixel_counts", "size_bytes", "original_name", "created_at"]


class RasterListView(Paged, APIView):
    """Land-cover rasters: list them, or upload one (a bureau)."""

    parser_classes = [MultiPartParser]
    request_body_limit = "MAX_RASTER_BYTES"  # config.common.limits

    def get_permissions(self):
        return [role_required(BUREAU)()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema_serializer(component_name="RasterUploadInput")
    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        epoch = serializers.IntegerField(min_value=1900, max_value=2100)
        legend = serializers.CharField(help_text=f"built-in legend ({', '.join(sorted(BUILTIN_LEGENDS))}) or "
                                                 "'custom' with legend_file")
        legend_file = serializers.FileField(required=False, help_text="custom legend: JSON or CSV "
                                                                      "(lucode, name, ipcc_category)")
        band = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(summary="List rasters", responses=RasterOutput(many=True))
    def get(self, request):
        return paginated(request, self, Raster.objects.all(), lambda page: RasterOutput(page, many=True).data)

    @extend_schema(summary="Upload a land-cover raster", description=(
        "A bureau uploads a GeoTIFF land-cover map (multipart/form-data) with its epoch (year) and legend: a "
        "built-in legend by name, or `custom` with a `legend_file` (JSON, or CSV with lucode, name, "
        "ipcc_category). The raster is checked, hashed (sha256) and stored as a tiled Cloud-Optimised GeoTIFF; "
        "its pixel counts per class are returned. The same file uploaded again answers 200 with the raster "
        "already stored; the same file with another epoch or legend is a 409.\n\n"
        "Only GeoTIFF and Cloud Optimized GeoTIFF files are opened (by their TIFF signature, with GDAL's GTiff driver "
        "alone); anything else, a VRT included, is a 422 before GDAL reads it. A body over MAX_RASTER_BYTES, or a "
        "raster whose header declares more than MAX_RASTER_PIXELS pixels (width × height × bands), is a 413 "
        "(problem type /problems/raster-too-large for the pixels) before any pixel is read."),
        request=InputSerializer, responses={201: RasterOutput, 200: RasterOutput,
                                            **problems(400, 403, 409, 413, 422)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        legend_name = data.validated_data["legend"]
        if legend_name == "custom" or "legend_file" in data.validated_data:
            if "legend_file" not in data.validated_data:
                raise LegendError(gettext_noop("legend 'custom' needs a legend_file (JSON, or CSV with lucode, name, "
                                               "ipcc_category)"), field="legend_file")
            legend = legend_from_file(data.validated_data["legend_file"], name=legend_name)
        else:
            legend = builtin_legend(legend_name)
        upload = data.validated_data["file"]
        with upload_on_disk(upload) as path:
            raster, created = raster_ingest(source_path=path, original_name=upload.name or "upload.tif",
                                            epoch=data.validated_data["epoch"], legend=legend,
                                            band=data.validated_data.get("band"), uploaded_by=request.user)
        return Response(RasterOutput(raster).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RasterDetailView(APIView):
    @extend_schema(summary="Get a raster", responses={200: RasterOutput, **problems(404)})
    def get(self, request, raster_id: int):
        return Response(RasterOutput(get_object_or_404(Raster, id=raster_id)).data)


@extend_schema_serializer(component_name="ParcelProperties")
class ParcelPropertiesOutput(OpenObjectSerializer):
    """The parcel's code, name, county and area, then every attribute its file gave (as imported)."""

    code = serializers.CharField(help_text="the parcel's code, unique in its county")
    name = serializers.CharField(help_text="the parcel's name, if its file gave one")
    county = serializers.CharField(source="county_code", help_text="6-digit county code (GB/T 2260)")
    area_ha = serializers.FloatField(help_text="geodesic area on the WGS84 ellipsoid, hectares")

    def to_representation(self, parcel: Parcel) -> dict:
        return {**super().to_representation(parcel), **parcel.attributes}


class ParcelFeatureOutput(serializers.Serializer):
    """A parcel as a GeoJSON Feature (RFC 7946), in WGS84 longitude/latitude."""

    type = ConstantField("Feature")
    id = serializers.IntegerField(help_text="parcel id")
    geometry = serializers.JSONField(help_text="GeoJSON Polygon or MultiPolygon, WGS84 longitude/latitude")
    bbox = serializers.SerializerMethodField()
    properties = ParcelPropertiesOutput(source="*")

    @extend_schema_field(serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4,
                                               help_text="[min_lon, min_lat, max_lon, max_lat]"))
    def get_bbox(self, parcel: Parcel) -> list[float]:
        return [parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat]


@extend_schema_serializer(component_name="ParcelFeatureCollection")
class ParcelFeatureCollectionOutput(serializers.Serializer):
    """The imported parcels as a GeoJSON FeatureCollection, in file order. The instance is {"features": [...]}."""

    type = ConstantField("FeatureCollection")
    features = ParcelFeatureOutput(many=True)


ParcelFeaturePageOutput = page_of("ParcelFeatureCollectionPage", ParcelFeatureOutput(many=True), key="features",
                                  before={"type": ConstantField("FeatureCollection")})


class ParcelGeometryInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["Polygon", "MultiPolygon"])
    coordinates = serializers.ListField(child=serializers.ListField(), help_text=(
        "GeoJSON coordinates: a Polygon's rings (the outer ring first, each closed: last position = first), or a "
        "MultiPolygon's polygons; positions are [x, y] in the `crs` query parameter's CRS (WGS84 [lon, lat] "
        "by default)"))


@extend_schema_serializer(component_name="ParcelFeatureProperties")
class ParcelFeaturePropertiesInput(OpenObjectSerializer):
    """`code` and `county`, an optional `name`; every other property is kept as the parcel's attributes (e.g.
    `volume_m3_per_ha` for the volume-BCEF method)."""

    code = serializers.CharField(help_text="the parcel number, unique in its county")
    county = serializers.RegexField(r"^\d{6}$", help_text="6-digit county code (GB/T 2260): your bureau's county")
    name = serializers.CharField(required=False, help_text="a name for people")


class ParcelFeatureInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["Feature"])
    geometry = ParcelGeometryInput()
    properties = ParcelFeaturePropertiesInput()


@extend_schema_serializer(component_name="ParcelImport", examples=[OpenApiExample(
    "Two forest parcels", request_only=True, value={"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "GB-0001", "county": "510727", "name": "Guanba north slope",
                                           "owner": "Guanba village collective"},
         "geometry": {"type": "Polygon", "coordinates": [[[104.50, 32.40], [104.51, 32.40], [104.51, 32.41],
                                                          [104.50, 32.41], [104.50, 32.40]]]}},
        {"type": "Feature", "properties": {"code": "GB-0002", "county": "510727", "volume_m3_per_ha": 145.0},
         "geometry": {"type": "Polygon", "coordinates": [[[104.52, 32.40], [104.53, 32.40], [104.53, 32.41],
                                                          [104.52, 32.41], [104.52, 32.40]]]}},
    ]})])
class ParcelImportInput(serializers.Serializer):
    """A GeoJSON FeatureCollection (RFC 7946) of the parcels to import: all of them, or none if any is bad."""

    type = serializers.ChoiceField(choices=["FeatureCollection"])
    features = ParcelFeatureInput(many=True, allow_empty=False)


class ParcelListView(APIView):
    parser_classes = [JSONParser]
    request_body_limit = "MAX_PARCEL_FILE_BYTES"  # config.common.limits

    def get_permissions(self):
        return [role_required(BUREAU)()] if self.request.method == "POST" else super().get_permissions()

    class QuerySerializer(serializers.Serializer):
        bbox = serializers.CharField(required=False, help_text="min_lon,min_lat,max_lon,max_lat (WGS84)")
        county = serializers.RegexField(r"^\d{6}$", required=False)

        def validate_bbox(self, value):
            try:
                parts = [float(v) for v in value.split(",")]
            except ValueError:
                raise serializers.ValidationError(
                    gettext("bbox must be four numbers: min_lon,min_lat,max_lon,max_lat")) from None
            if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
                raise serializers.ValidationError(
                    gettext("bbox must be min_lon,min_lat,max_lon,max_lat with min <= max"))
            return parts

    @extend_schema(operation_id="parcels_list", summary="List parcels", description=(
        "Parcels as a paged GeoJSON FeatureCollection in WGS84, filtered by county and by a bounding box that "
        "their own bounding boxes intersect."),
        parameters=[QuerySerializer, *PAGE_PARAMETERS], responses={200: ParcelFeaturePageOutput, **problems(400)})
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        parcels = Parcel.objects.all()
        if "county" in query.validated_data:
            parcels = parcels.filter(county_code=query.validated_data["county"])
        if "bbox" in query.validated_data:
            parcels = parcels.intersecting_bbox(*query.validated_data["bbox"])
        return page_response(request, self, parcels, ParcelFeaturePageOutput, key="features")

    @extend_schema(
        summary="Import parcels",
        description=(
            "A bureau imports the land parcels of its county from a GeoJSON FeatureCollection. Each feature is a "
            "Polygon or MultiPolygon with the properties `code` (the parcel number) and `county`; other properties "
            "are kept as attributes. Coordinates are WGS84 longitude/latitude unless `crs` names another CRS, e.g. "
            "EPSG:4490 (CGCS2000) or a Gauss-Krüger zone such as EPSG:4545. Areas are computed on the ellipsoid, "
            "in hectares.\n\n"
            "The import is all or nothing: a 422 problem lists every bad feature in `errors` (a JSON `pointer` to "
            "what is wrong, e.g. `#/features/3/properties/code`, its `index` in the file, its `code` and what is "
            "wrong; a bad `crs` is named as `parameter`) and stores none; a code already used in the county is a "
            "409. A code may have 64 characters and a name 255. A body that is not JSON, or nests arrays and objects "
            "more than 64 deep, is a 400; one over MAX_PARCEL_FILE_BYTES a 413, refused before it is read. "
            "The answer is the imported parcels as GeoJSON features, in file order."),
        request=ParcelImportInput,
        parameters=[OpenApiParameter("crs", str, description="CRS of the coordinates, e.g. EPSG:4490 or EPSG:4545; "
                                                             "default WGS84 longitude/latitude (RFC 7946)")],
        responses={201: ParcelFeatureCollectionOutput, **problems(400, 403, 409, 413, 422)},
    )
    def post(self, request):
        county = user_county_code(request.user)
        if county is None:
            raise CountyScopeError(gettext_noop("your user belongs to no county; ask an administrator to set one"))
        parcels = parcel_import(feature_collection=request.data, crs=request.query_params.get("crs"),
                                allowed_county=county)
        return Response(ParcelFeatureCollectionOutput({"features": parcels}).data, status=status.HTTP_201_CREATED)


class ParcelDetailView(APIView):
    @extend_schema(summary="Get a parcel", description="One parcel as a GeoJSON Feature (application/geo+json).",
                   responses={(200, "application/geo+json"): ParcelFeatureOutput, **problems(404)})
    def get(self, request, parcel_id: int):
        return Response(ParcelFeatureOutput(get_object_or_404(Parcel, id=parcel_id)).data,
                        content_type="application/geo+json")

