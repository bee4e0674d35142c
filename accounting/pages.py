"""Pages for the county overview and accounting runs: the map and totals of the latest run, the run list with
progress, a form that starts a run (accounting.services) and a form that publishes a pool-table method."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounting.methods import MethodError, pool_table_read
from accounting.methods.units import CO2_PER_C
from accounting.methods.valuation import ValuationTerms
from accounting.models import AccountingRun, MethodVersion
from accounting.services import RunInputError, accounting_run_create, method_version_create
from config.common.pages import FORM_INVALID_STATUS, refused, role_page_required
from config.common.pagetags import grouped
from config.common.problems import problem_detail
from config.common.roles import BUREAU, has_role
from geo.counties import CountyCodeError, validate_county_code
from geo.models import Parcel, Raster, user_county_code
from geo.svgmap import MapFeature, svg_map


def _class_names(raster: Raster) -> dict[str, str]:
    return {str(c["code"]): c["name"] for c in (raster.legend or {}).get("classes", [])}


@role_page_required()
def county_overview(request, county_code: str):
    """The county's parcels coloured by carbon density (t C/ha) in its latest succeeded run, the run's totals, and
    the latest runs with their progress."""
    try:
        validate_county_code(county_code)
    except CountyCodeError:
        raise Http404 from None
    runs = AccountingRun.objects.filter(county_code=county_code).select_related("raster", "method_version")
    latest = runs.filter(status=AccountingRun.SUCCEEDED).first()
    density = {}
    if latest is not None:
        for parcel_id, area_ha, stock_t_c in latest.results.values_list("parcel_id", "area_ha", "stock_t_c"):
            density[parcel_id] = stock_t_c / area_ha if area_ha > 0 else None
    parcels = Parcel.objects.filter(county_code=county_code).only("id", "code", "name", "geometry", "area_ha")
    search = reverse("page-assets")
    features = []
    for p in parcels:
        value = density.get(p.id)
        shown = gettext("no result") if value is None else f"{grouped(value, 1)} t C/ha"
        features.append(MapFeature(p.geometry, value, f"{search}?{urlencode({'q': p.code})}",
                                   f"{p.code} {p.name} · {grouped(p.area_ha, 2)} ha · {shown}"))
    totals = latest.totals if latest is not None else None
    class_rows = []
    if totals:
        names = _class_names(latest.raster)
        class_rows = [{"code": code, "name": names.get(code, code), "area_ha": area}
                      for code, area in sorted(totals.get("class_area_ha", {}).items(), key=lambda kv: -kv[1])]
    return render(request, "accounting/county.html", {
        "county_code": county_code, "map": svg_map(features, width_px=760), "parcel_count": len(features),
        "area_ha": sum(p.area_ha for p in parcels), "latest": latest, "totals": totals, "class_rows": class_rows,
        "ci95_co2e": [v * CO2_PER_C for v in totals["stock_ci95_tC"]] if totals and totals.get("stock_ci95_tC")
        else None,
        "runs": runs[:8],
    })


class RunForm(forms.Form):
    method_version = forms.ModelChoiceField(MethodVersion.objects.all(), label=_("Method version"),
                                            empty_label=None)
    raster = forms.ModelChoiceField(Raster.objects.all(), label=_("Land-cover raster (baseline epoch)"),
                                    empty_label=None)
    alt_raster = forms.ModelChoiceField(Raster.objects.all(), label=_("Second epoch (optional: stock change)"),
                                        required=False)
    price_per_t_c = forms.DecimalField(label=_("Carbon price, per t C (optional; needs a second epoch)"),
                                       required=False, min_value=Decimal(0), max_digits=14, decimal_places=4)
    currency = forms.RegexField(r"^[A-Z]{3}$", label=_("Currency (ISO 4217)"), initial="CNY")
    discount_rate_pct = forms.DecimalField(label=_("Discount rate, % per year"), initial=Decimal(0),
                                           max_digits=7, decimal_places=4)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method_version"].label_from_instance = lambda m: f"{m.id} · {m.name or m.kind} ({m.kind})"
        for name in ("raster", "alt_raster"):
            self.fields[name].label_from_instance = lambda r: f"{r.id} · {r.epoch} · {r.original_name}"


class PoolTableForm(forms.Form):
    name = forms.CharField(label=_("Name of the method version"), max_length=200)
    pool_table = forms.FileField(label=_("Carbon pool table (CSV: lucode, c_above, c_below, c_soil, c_dead in t C/ha)"))


def _runs_page(request, *, run_form=None, method_form=None, status=200, problem=None):
    county = user_county_code(request.user)
    runs = AccountingRun.objects.select_related("method_version", "raster")
    return refused(render(request, "accounting/runs.html", {
        "runs": runs.filter(county_code=county)[:20] if county else runs[:20], "county": county,
        "run_form": run_form or RunForm(), "method_form": method_form or PoolTableForm(),
        "can_run": has_role(request.user, BUREAU),
    }, status=status), problem)


@role_page_required()
def runs_page(request):
    """The runs, for every role as `GET /api/runs/` is; the forms that start a run or publish a method are the
    bureau's."""
    return _runs_page(request)


@require_POST
@role_page_required(BUREAU)
def run_start(request):
    form = RunForm(request.POST)
    if not form.is_valid():
        return _runs_page(request, run_form=form, status=FORM_INVALID_STATUS)
    data = form.cleaned_data
    county = user_county_code(request.user)
    try:
        valuation = None
        if data["price_per_t_c"] is not None:
            valuation = ValuationTerms(price_per_t_c=data["price_per_t_c"], currency=data["currency"],
                                       discount_rate_pct=data["discount_rate_pct"] or Decimal(0))
        run = accounting_run_create(
            method_version=data["method_version"], raster=data["raster"], alt_raster=data["alt_raster"],
            parcels=Parcel.objects.filter(county_code=county), valuation=valuation, county_code=county or "",
            created_by=request.user)
    except (RunInputError, ValueError) as exc:
        field = getattr(exc, "field", None)
        if field not in form.fields:
            field = "price_per_t_c" if field == "price_change_pct" else None
        form.add_error(field, problem_detail(exc))
        return _runs_page(request, run_form=form, status=getattr(exc, "http_status", 422), problem=exc)
    return redirect("page-run", run_id=run.id)


@require_POST
@role_page_required(BUREAU)
def method_publish(request):
    form = PoolTableForm(request.POST, request.FILES)
    if not form.is_valid():
        return _runs_page(request, method_form=form, status=FORM_INVALID_STATUS)
    try:
        table = pool_table_read(form.cleaned_data["pool_table"].read().decode("utf-8-sig"))
        version, created = method_version_create(kind="pool_table", parameters={"pools": table.as_parameters()},
                                                 name=form.cleaned_data["name"], created_by=request.user)
    except (MethodError, UnicodeDecodeError) as exc:
        form.add_error("pool_table", problem_detail(exc))
        return _runs_page(request, method_form=form, status=getattr(exc, "http_status", 422), problem=exc)
    if created:
        messages.success(request, gettext("Method version %(id)s published (sha256 %(hash)s…).") % {
            "id": version.id, "hash": version.parameters_sha256[:12]})
    else:
        messages.info(request, gettext("These parameters are already method version %(id)s.") % {"id": version.id})
    return redirect("page-runs")


@role_page_required()
def run_page(request, run_id: int):
    run = get_object_or_404(AccountingRun.objects.select_related("method_version", "raster", "alt_raster"),
                            id=run_id)
    names = _class_names(run.raster)
    class_rows = [{"name": names.get(code, code), "area_ha": area}
                  for code, area in sorted(((run.totals or {}).get("class_area_ha") or {}).items(),
                                           key=lambda kv: -kv[1])]
    return render(request, "accounting/run.html", {
        "run": run, "totals": run.totals, "class_rows": class_rows,
        "finished": run.status in (AccountingRun.SUCCEEDED, AccountingRun.FAILED),
        "percent": round(100 * run.parcels_done / run.parcels_total) if run.parcels_total else 0,
    })
