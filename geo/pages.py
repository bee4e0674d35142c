"""Bureau pages for rasters and parcels: upload forms that call geo.services and show its errors by the field."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from config.common.errors import JSONInputError
from config.common.jsonlimits import json_loads
from config.common.limits import body_limit
from config.common.pages import FORM_INVALID_STATUS, refused, role_page_required
from config.common.problems import problem_detail, translated
from config.common.roles import BUREAU
from geo.errors import CountyScopeError, LegendError, ParcelError, RasterError, gettext_noop
from geo.legends import BUILTIN_LEGENDS, builtin_legend, legend_from_file
from geo.models import Parcel, Raster, user_county_code
from geo.services import parcel_import, raster_ingest, upload_on_disk


class RasterUploadForm(forms.Form):
    file = forms.FileField(label=_("Land-cover raster (GeoTIFF)"))
    epoch = forms.IntegerField(label=_("Year the land cover shows"), min_value=1900, max_value=2100)
    # A name with a drop-down of the built-in ones: an unknown name reaches the service, which refuses it as the
    # API does.
    legend = forms.CharField(label=_("Legend (what each class code means)"), widget=forms.Select(
        choices=[(name, name) for name in sorted(BUILTIN_LEGENDS)] + [("custom", _("custom: upload a legend file"))]))
    legend_file = forms.FileField(label=_("Custom legend file (JSON, or CSV with lucode, name, ipcc_category)"),
                                  required=False)


class ParcelUploadForm(forms.Form):
    file = forms.FileField(label=_("Parcels (GeoJSON FeatureCollection)"),
                           help_text=_("Each feature needs the properties code (forest-right certificate or parcel "
                                       "number) and county (6-digit code)."))
    crs = forms.CharField(label=_("Coordinate system of the file"), required=False,
                          help_text=_("Empty: WGS84 longitude/latitude. For example EPSG:4490 (CGCS2000) or "
                                      "EPSG:4545 (CGCS2000 Gauss-Krüger, central meridian 105°E)."))


def _upload_page(request, *, raster_form=None, parcel_form=None, status=200, problem=None):
    county = user_county_code(request.user)
    return refused(render(request, "geo/upload.html", {
        "raster_form": raster_form or RasterUploadForm(),
        "parcel_form": parcel_form or ParcelUploadForm(),
        "rasters": Raster.objects.all()[:10],
        "county": county,
        "parcel_count": Parcel.objects.filter(county_code=county).count() if county else 0,
        "max_parcel_mb": settings.MAX_PARCEL_FILE_BYTES // 1024**2,
    }, status=status), problem)


@role_page_required(BUREAU)
def upload_page(request):
    return _upload_page(request)


@body_limit("MAX_RASTER_BYTES")
@require_POST
@role_page_required(BUREAU)
def raster_upload(request):
    form = RasterUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_page(request, raster_form=form, status=FORM_INVALID_STATUS)
    data = form.cleaned_data
    try:
        if data["legend"] == "custom":
            if data["legend_file"] is None:
                raise LegendError(gettext_noop("a custom legend needs a legend file"))
            legend = legend_from_file(data["legend_file"])
        else:
            legend = builtin_legend(data["legend"])
    except LegendError as exc:
        form.add_error("legend_file" if data["legend"] == "custom" else "legend", problem_detail(exc))
        return _upload_page(request, raster_form=form, status=getattr(exc, "http_status", 422), problem=exc)
    upload = data["file"]
    try:
        with upload_on_disk(upload) as path:
            raster, created = raster_ingest(source_path=path, original_name=upload.name or "upload.tif",
                                            epoch=data["epoch"], legend=legend, uploaded_by=request.user)
    except RasterError as exc:
        form.add_error("file", problem_detail(exc))
        return _upload_page(request, raster_form=form, status=exc.http_status, problem=exc)  # 409, 413 as the API
    if created:
        messages.success(request, gettext("Raster %(id)s stored: %(w)s × %(h)s pixels, epoch %(epoch)s.") % {
            "id": raster.id, "w": raster.width, "h": raster.height, "epoch": raster.epoch})
    else:
        messages.info(request, gettext("These bytes are already raster %(id)s; nothing new was stored.") % {
            "id": raster.id})
    return redirect("page-upload")


@body_limit("MAX_PARCEL_FILE_BYTES")
@require_POST
@role_page_required(BUREAU)
def parcel_upload(request):
    form = ParcelUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_page(request, parcel_form=form, status=FORM_INVALID_STATUS)
    upload = form.cleaned_data["file"]
    if upload.size > settings.MAX_PARCEL_FILE_BYTES:
        form.add_error("file", gettext("The file is %(size)s bytes; the limit is %(limit)s bytes.") % {
            "size": upload.size, "limit": settings.MAX_PARCEL_FILE_BYTES})
        return _upload_page(request, parcel_form=form, status=413)
    try:
        collection = json_loads(upload.read().removeprefix(b"\xef\xbb\xbf"))  # a depth limit (jsonlimits)
    except JSONInputError as exc:
        form.add_error("file", gettext("This file is not GeoJSON (JSON could not be read: %(reason)s).") % {
            "reason": problem_detail(exc)})
        return _upload_page(request, parcel_form=form, status=FORM_INVALID_STATUS)  # a body that does not parse
    county = user_county_code(request.user)
    try:
        if county is None:
            raise CountyScopeError(gettext_noop("your user belongs to no county; ask an administrator to set one"))
        parcels = parcel_import(feature_collection=collection, crs=form.cleaned_data["crs"] or None,
                                allowed_county=county)
    except ParcelError as exc:
        for problem in exc.problems:
            field = exc.field or "file"
            where = "" if problem["index"] is None else gettext("feature %(index)s%(code)s: ") % {
                "index": problem["index"], "code": f" ({problem['code']})" if problem.get("code") else ""}
            form.add_error(field, where + translated(problem["detail"]))
        return _upload_page(request, parcel_form=form, status=exc.http_status, problem=exc)  # 409: a duplicate
    except CountyScopeError as exc:
        form.add_error("file", problem_detail(exc))
        return _upload_page(request, parcel_form=form, status=exc.http_status, problem=exc)
    messages.success(request, gettext("%(count)s parcels imported (%(area).1f ha).") % {
        "count": len(parcels), "area": sum(p.area_ha for p in parcels)})
    return redirect("page-upload")
