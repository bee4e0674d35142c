"""REST doorways for rasters and parcels: check the input, call one service, serialize the result."""

import contextlib
import os

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import PAGE_PARAMETERS, Paged, page_schema, paginated, problems
from config.common.errors import UploadTooLarge
from config.common.roles import BUREAU, role_required
from geo.errors import CountyScopeError, LegendError, RasterTooLargeError, gettext_noop
from geo.legends import BUILTIN_LEGENDS, builtin_legend, legend_from_upload
from geo.models import Parcel, Raster, user_county_code
from geo.services import copy_upload_to_temp, parcel_import, raster_ingest


class RasterOutput(serializers.ModelSerializer):
    class Meta:
        model = Raster
        fields = ["id", "sha256", "epoch", "legend", "band", "width", "height", "dtype", "nodata", "crs_wkt", "epsg",
                  "transform", "class_pixel_counts", "size_bytes", "original_name", "created_at"]


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class RasterListView(Paged, APIView):
    parser_classes = [MultiPartParser]

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

    @extend_schema(responses=RasterOutput(many=True))
    def get(self, request):
        return paginated(request, self, Raster.objects.all(), lambda page: RasterOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RasterOutput, 200: RasterOutput,
                                                       **problems(400, 403, 409, 413, 422)})
    def post(self, request):
        # Refuse an oversized body before reading it.
        length = _content_length(request)
        if length > settings.MAX_RASTER_BYTES:
            raise RasterTooLargeError(length, settings.MAX_RASTER_BYTES)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        legend_name = data.validated_data["legend"]
        if legend_name == "custom" or "legend_file" in data.validated_data:
            if "legend_file" not in data.validated_data:
                raise LegendError(gettext_noop("legend 'custom' needs a legend_file (JSON, or CSV with lucode, name, "
                                               "ipcc_category)"), field="legend_file")
            text = data.validated_data["legend_file"].read().decode("utf-8-sig")
            legend = legend_from_upload(text, name=legend_name if legend_name != "custom" else "custom")
        else:
            legend = builtin_legend(legend_name)
        upload = data.validated_data["file"]
        temp_path = copy_upload_to_temp(upload)
        try:
            raster, created = raster_ingest(source_path=temp_path, original_name=upload.name or "upload.tif",
                                            epoch=data.validated_data["epoch"], legend=legend,
                                            band=data.validated_data.get("band"), uploaded_by=request.user)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp_path)
        return Response(RasterOutput(raster).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RasterDetailView(APIView):
    @extend_schema(responses={200: RasterOutput, **problems(404)})
    def get(self, request, raster_id: int):
        return Response(RasterOutput(get_object_or_404(Raster, id=raster_id)).data)


class ParcelFeatureOutput(serializers.Serializer):
    """A parcel as a GeoJSON Feature (documentation of `parcel_feature`)."""

    type = serializers.CharField(help_text='"Feature"')
    id = serializers.IntegerField()
    geometry = serializers.JSONField(help_text="GeoJSON Polygon or MultiPolygon, WGS84 longitude/latitude")
    bbox = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4,
                                 help_text="[min_lon, min_lat, max_lon, max_lat]")
    properties = inline_serializer("ParcelProperties", {
        "code": serializers.CharField(), "name": serializers.CharField(), "county": serializers.CharField(),
        "area_ha": serializers.FloatField()}, help_text="code, name, county, area_ha and the imported attributes")


def parcel_feature(parcel: Parcel) -> dict:
    return {
        "type": "Feature",
        "id": parcel.id,
        "geometry": parcel.geometry,
        "bbox": [parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat],
        "properties": {
            "code": parcel.code,
            "name": parcel.name,
            "county": parcel.county_code,
            "area_ha": parcel.area_ha,
            **parcel.attributes,
        },
    }


class ParcelListView(APIView):
    parser_classes = [JSONParser]

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

    @extend_schema(operation_id="parcels_list", parameters=[QuerySerializer, *PAGE_PARAMETERS], responses={
        200: page_schema("ParcelFeatureCollectionPage", ("features", ParcelFeatureOutput(many=True)),
                         type=serializers.CharField(help_text='"FeatureCollection"')),
        **problems(400)})
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        parcels = Parcel.objects.all()
        if "county" in query.validated_data:
            parcels = parcels.filter(county_code=query.validated_data["county"])
        if "bbox" in query.validated_data:
            parcels = parcels.intersecting_bbox(*query.validated_data["bbox"])
        response = paginated(request, self, parcels, lambda page: [parcel_feature(p) for p in page])
        response.data["type"] = "FeatureCollection"
        response.data["features"] = response.data.pop("results")
        return response

    @extend_schema(
        request={"application/json": dict},
        parameters=[OpenApiParameter("crs", str, description="CRS of the coordinates, e.g. EPSG:4490 or EPSG:4545; "
                                                             "default WGS84 longitude/latitude (RFC 7946)")],
        responses={201: inline_serializer("ParcelFeatureCollection", {
            "type": serializers.CharField(help_text='"FeatureCollection"'),
            "features": ParcelFeatureOutput(many=True)}), **problems(400, 403, 409, 413, 422)},
    )
    def post(self, request):
        length = _content_length(request)
        if length > settings.MAX_PARCEL_FILE_BYTES:
            raise UploadTooLarge(length, settings.MAX_PARCEL_FILE_BYTES)
        county = user_county_code(request.user)
        if county is None:
            raise CountyScopeError(gettext_noop("your user belongs to no county; ask an administrator to set one"))
        parcels = parcel_import(feature_collection=request.data, crs=request.query_params.get("crs"),
                                allowed_county=county)
        return Response({"type": "FeatureCollection", "features": [parcel_feature(p) for p in parcels]},
                        status=status.HTTP_201_CREATED)


class ParcelDetailView(APIView):
    @extend_schema(responses={(200, "application/geo+json"): ParcelFeatureOutput, **problems(404)})
    def get(self, request, parcel_id: int):
        return Response(parcel_feature(get_object_or_404(Parcel, id=parcel_id)),
                        content_type="application/geo+json")

