"""Pages for assets, their registration, valuation, pledges, transfers and retirement, and a bank's pledge book.

Each form calls one service of `ledger.registry.services`; a refusal is shown beside the field the service names
(`exc.field`), in the page's language, with the status and problem type the API answers for it. Forms parse
types only: every rule lives in the service. Reads are fetches by code or id and the registry's QuerySets.
"""

import hashlib
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounting.models import AccountingRun
from config.common.pages import FORM_INVALID_STATUS, is_refusal, offer_only, refused, role_page_required, show_refusal
from config.common.pagetags import LABELS
from config.common.problems import problem_detail, problem_type_of
from config.common.roles import BANK, BUREAU, EXCHANGE, has_role
from geo.models import Parcel, user_county_code
from geo.svgmap import MapFeature, svg_map
from ledger.log.models import Entry
from ledger.registry import services as registry
from ledger.registry.errors import (
    RegistryForbiddenError,
    RegistryInputError,
)
from ledger.registry.models import Asset, Party, Pledge

ASSETS_PER_PAGE = 50
RIGHTS_TYPE_CHOICES = [(r, r) for r in Asset.RIGHTS_TYPES]


# --- search ------------------------------------------------------------------------------------------------------


@role_page_required()
def asset_search(request):
    """Assets by code, parcel code or holder name, and by status; pledged ones marked."""
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    assets = Asset.objects.select_related("parcel", "holder", "valuation").order_by("-created_at", "code")
    if query:
        assets = assets.filter(Q(code__icontains=query) | Q(parcel__code__icontains=query)
                               | Q(holder__name__icontains=query))
    if status and status not in Asset.STATUS_FILTERS:  # as the API's filter refuses it
        messages.error(request, gettext("Unknown status %(status)s; choose one of the list.") % {"status": status})
        return render(request, "ledger/assets.html", {"assets": [], "query": query, "status": "",
                                                      "statuses": Asset.STATUS_FILTERS}, status=FORM_INVALID_STATUS)
    if status:
        assets = assets.with_status(status)
    shown = list(assets[:ASSETS_PER_PAGE])
    pledged = set(Pledge.objects.filter(asset__in=shown, status=Pledge.ACTIVE).values_list("asset_id", flat=True))
    return render(request, "ledger/assets.html", {
        "assets": [(a, a.id in pledged) for a in shown], "query": query, "status": status,
        "statuses": Asset.STATUS_FILTERS, "more": assets.count() > len(shown),
    })


# --- the asset page ----------------------------------------------------------------------------------------------


class ValueForm(forms.Form):
    run = forms.IntegerField(label=_("Accounting run"), widget=forms.Select)
    price_per_t_co2e = forms.DecimalField(label=_("Price per t CO2e"), initial=Decimal("85"))
    currency = forms.RegexField(r"^[A-Z]{3}$", label=_("Currency (ISO 4217)"), initial="CNY")

    def __init__(self, *args, asset: Asset, **kwargs):
        super().__init__(*args, **kwargs)
        usable = AccountingRun.objects.filter(status=AccountingRun.SUCCEEDED,
                                              results__parcel_id=asset.parcel_id).distinct().select_related("raster")
        offer_only(self.fields["run"], usable, lambda r: f"{gettext('Run')} {r.id} · {r.raster.epoch}")


class PledgeForm(forms.Form):
    amount = forms.DecimalField(label=_("Loan amount secured"))
    currency = forms.RegexField(r"^[A-Z]{3}$", label=_("Currency (ISO 4217)"), initial="CNY")
    term_months = forms.IntegerField(label=_("Term, months"), initial=36)


class TransferForm(forms.Form):
    to_holder = forms.IntegerField(label=_("New holder"), widget=forms.Select)
    trade_ref = forms.CharField(label=_("Trade reference"), max_length=100, required=False)

    def __init__(self, *args, asset: Asset, **kwargs):
        super().__init__(*args, **kwargs)
        holders = Party.objects.filter(kind__in=Party.HOLDER_KINDS).exclude(id=asset.holder_id).order_by("name")
        offer_only(self.fields["to_holder"], holders, lambda p: f"{p.name} · {LABELS.get(p.kind, p.kind)}")


class RetireForm(forms.Form):
    beneficiary = forms.CharField(label=_("Beneficiary of the offset claim"), max_length=200)
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


# The API's field names where a form's differ.
VALUE_FIELDS = {"price_per_tCO2e": "price_per_t_co2e"}
REGISTER_FIELDS = {"parcel": "parcel_code"}


def _asset_page(request, asset: Asset, *, value_form=None, pledge_form=None, transfer_form=None, retire_form=None,
                status=200, problem=None):
    parcel = asset.parcel
    valuation = asset.valuation
    density = float(valuation.stock_t_c) / parcel.area_ha if valuation and parcel.area_ha > 0 else None
    title = f"{parcel.code} · {parcel.area_ha:.2f} ha" + (f" · {density:.1f} t C/ha" if density is not None else "")
    pledges = list(asset.pledges.select_related("pledgee").order_by("-id"))
    active = [p for p in pledges if p.status == Pledge.ACTIVE]
    bank_party = Party.objects.filter(user=request.user, kind=Party.BANK).first() if has_role(request.user,
                                                                                               BANK) else None
    own_county = has_role(request.user, BUREAU) and user_county_code(request.user) == asset.county_code
    return refused(render(request, "ledger/asset.html", {
        "asset": asset, "parcel": parcel, "valuation": valuation, "density": density,
        "map": svg_map([*_neighbourhood(parcel), MapFeature(parcel.geometry, density, "", title)], width_px=520),
        "pledges": pledges, "active_total": sum((p.amount for p in active), Decimal(0)),
        "ltv_limit_pct": settings.PLEDGE_LTV_LIMIT_PCT, "bank_party": bank_party,
        "entries": Entry.objects.for_asset(asset.code),
        "can_confirm": own_county and asset.status == Asset.REGISTERED,
        "can_value": own_county and asset.status == Asset.CONFIRMED,
        "can_pledge": bank_party is not None and asset.status == Asset.CONFIRMED and valuation is not None,
        "can_transfer": has_role(request.user, EXCHANGE) and asset.status == Asset.CONFIRMED and not active,
        "value_form": value_form or ValueForm(asset=asset, initial={"currency": "CNY"}),
        "pledge_form": pledge_form or PledgeForm(initial={"currency": valuation.currency if valuation else "CNY"}),
        "transfer_form": transfer_form or TransferForm(asset=asset),
        "retire_form": retire_form or RetireForm(),
    }, status=status), problem)


def _neighbourhood(parcel: Parcel) -> list[MapFeature]:
    """The parcels around `parcel` (within its larger side on each side), drawn grey for context."""
    pad_lon = pad_lat = max(parcel.max_lon - parcel.min_lon, parcel.max_lat - parcel.min_lat)
    around = Parcel.objects.intersecting_bbox(parcel.min_lon - pad_lon, parcel.min_lat - pad_lat,
                                              parcel.max_lon + pad_lon, parcel.max_lat + pad_lat)
    return [MapFeature(p.geometry, None, "", p.code) for p in around.exclude(id=parcel.id).only("geometry", "code")]


def _asset(code: str) -> Asset:
    return get_object_or_404(Asset.objects.select_related("parcel", "holder", "valuation"), code=code)


@role_page_required()
def asset_page(request, code: str):
    return _asset_page(request, _asset(code))


@require_POST
@role_page_required(BUREAU)
def asset_confirm(request, code: str):
    asset = _asset(code)
    try:
        registry.asset_confirm(asset=asset, county_code=user_county_code(request.user))
    except Exception as exc:
        if not is_refusal(exc):
            raise
        messages.error(request, problem_detail(exc))
        return _asset_page(request, asset, status=problem_type_of(exc).status, problem=exc)
    messages.success(request, gettext("Ownership of asset %(code)s confirmed.") % {"code": asset.code})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(BUREAU)
def asset_value(request, code: str):
    asset = _asset(code)
    form = ValueForm(request.POST, asset=asset)
    if not form.is_valid():
        return _asset_page(request, asset, value_form=form, status=FORM_INVALID_STATUS)
    data = form.cleaned_data
    try:
        run = registry.run_get(run_id=data["run"])
        registry.asset_value(asset=asset, run=run, county_code=user_county_code(request.user),
                             price_per_t_co2e=data["price_per_t_co2e"], currency=data["currency"],
                             valued_by=request.user)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        status = show_refusal(form, exc, fields=VALUE_FIELDS)
        return _asset_page(request, asset, value_form=form, status=status, problem=exc)
    messages.success(request, gettext("Asset %(code)s valued from run %(run)s.") % {"code": asset.code,
                                                                              "run": run.id})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(BANK)
def pledge_create(request, code: str):
    asset = _asset(code)
    form = PledgeForm(request.POST)
    if not form.is_valid():
        return _asset_page(request, asset, pledge_form=form, status=FORM_INVALID_STATUS)
    data = form.cleaned_data
    try:
        bank = registry.party_of_user(request.user, kind=Party.BANK)
        pledge = registry.pledge_create(asset=asset, pledgee=bank, amount=data["amount"], currency=data["currency"],
                                        term_months=data["term_months"], created_by=request.user)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        status = show_refusal(form, exc)
        return _asset_page(request, asset, pledge_form=form, status=status, problem=exc)
    messages.success(request, gettext("Pledge %(id)s registered on asset %(code)s.") % {"id": pledge.id,
                                                                                  "code": asset.code})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(EXCHANGE)
def asset_transfer(request, code: str):
    asset = _asset(code)
    form = TransferForm(request.POST, asset=asset)
    if not form.is_valid():
        return _asset_page(request, asset, transfer_form=form, status=FORM_INVALID_STATUS)
    data = form.cleaned_data
    try:
        to_holder = registry.party_get(party_id=data["to_holder"], field="to_holder")
        registry.asset_transfer(asset=asset, to_holder=to_holder, trade_ref=data["trade_ref"],
                                created_by=request.user)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        status = show_refusal(form, exc)
        return _asset_page(request, asset, transfer_form=form, status=status, problem=exc)
    messages.success(request, gettext("Asset %(code)s transferred to %(holder)s.") % {
        "code": asset.code, "holder": to_holder.name})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(EXCHANGE)
def asset_retire(request, code: str):
    asset = _asset(code)
    form = RetireForm(request.POST)
    if not form.is_valid():
        return _asset_page(request, asset, retire_form=form, status=FORM_INVALID_STATUS)
    try:
        registry.asset_retire(asset=asset, created_by=request.user, **form.cleaned_data)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        status = show_refusal(form, exc)
        return _asset_page(request, asset, retire_form=form, status=status, problem=exc)
    messages.success(request, gettext("Asset %(code)s retired for %(beneficiary)s.") % {
        "code": asset.code, "beneficiary": form.cleaned_data["beneficiary"]})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(BANK)
def pledge_release(request, pledge_id: int):
    pledge = get_object_or_404(Pledge.objects.select_related("asset"), id=pledge_id)
    try:
        bank = registry.party_of_user(request.user, kind=Party.BANK)
        registry.pledge_release(pledge=pledge, released_by=bank)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        messages.error(request, problem_detail(exc))
        if request.POST.get("back") == "pledges":
            return pledge_book(request, status=problem_type_of(exc).status, problem=exc)
        return _asset_page(request, _asset(pledge.asset.code), status=problem_type_of(exc).status, problem=exc)
    messages.success(request, gettext("Pledge %(id)s released.") % {"id": pledge.id})
    if request.POST.get("back") == "pledges":
        return redirect("page-pledges")
    return redirect("page-asset", code=pledge.asset.code)


@role_page_required(BANK)
def pledge_book(request, *, status=200, problem=None):
    """The signed-in bank's pledges, newest first, with their assets and a release button for active ones."""
    try:
        bank = registry.party_of_user(request.user, kind=Party.BANK)
    except RegistryForbiddenError as exc:
        return refused(render(request, "ledger/pledges.html", {"pledges": [], "problem": problem_detail(exc)},
                              status=exc.http_status), exc)
    pledges = list(Pledge.objects.filter(pledgee=bank).select_related("asset", "asset__holder").order_by("-id"))
    active = [p for p in pledges if p.status == Pledge.ACTIVE]
    return refused(render(request, "ledger/pledges.html", {
        "bank": bank, "pledges": pledges, "active_count": len(active),
        "active_totals": sorted(_totals_by_currency(active).items()),
    }, status=status), problem)


def _totals_by_currency(pledges) -> dict:
    totals = {}
    for pledge in pledges:
        totals[pledge.currency] = totals.get(pledge.currency, 0) + pledge.amount
    return totals


# --- registration ------------------------------------------------------------------------------------------------


class AssetRegisterForm(forms.Form):
    parcel_code = forms.CharField(label=_("Parcel code (forest-right certificate or parcel number)"), max_length=64)
    rights_type = forms.ChoiceField(label=_("Rights type"), choices=RIGHTS_TYPE_CHOICES)
    holder = forms.IntegerField(label=_("Rights holder"), widget=forms.Select)
    evidence = forms.FileField(label=_("Evidence (certificate scan, survey or drone image)"), required=False,
                               help_text=_("Only its name and sha256 digest are recorded on the ledger."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rights_type"].choices = [(r, LABELS.get(r, r)) for r, _r in RIGHTS_TYPE_CHOICES]
        offer_only(self.fields["holder"], Party.objects.filter(kind__in=Party.HOLDER_KINDS).order_by("name"),
                   lambda p: f"{p.name} ({LABELS.get(p.kind, p.kind)})")


def _register_page(request, form=None, status=200, problem=None):
    county = user_county_code(request.user)
    free = Parcel.objects.filter(county_code=county).exclude(
        assets__status__in=registry.OVERLAP_BLOCKING_STATUSES).order_by("code")
    return refused(render(request, "ledger/register.html", {
        "form": form or AssetRegisterForm(), "county": county, "free_parcels": free[:500],
        "recent": Asset.objects.filter(county_code=county).select_related("parcel", "holder").order_by(
            "-created_at")[:10],
    }, status=status), problem)


@role_page_required(BUREAU)
def asset_register(request):
    if request.method != "POST":
        return _register_page(request)
    form = AssetRegisterForm(request.POST, request.FILES)
    if not form.is_valid():
        return _register_page(request, form, status=FORM_INVALID_STATUS)
    data = form.cleaned_data
    county = user_county_code(request.user)
    parcel = Parcel.objects.filter(county_code=county, code=data["parcel_code"].strip()).first()
    if parcel is None:
        exc = RegistryInputError(gettext_noop("No parcel with code %(code)s in county %(county)s; import it first."),
                                 field="parcel", code=data["parcel_code"], county=county)
        return _register_page(request, form, status=show_refusal(form, exc, fields=REGISTER_FIELDS), problem=exc)
    evidence = []
    if data["evidence"] is not None:
        digest = hashlib.sha256()
        for chunk in data["evidence"].chunks():
            digest.update(chunk)
        evidence.append({"name": data["evidence"].name, "sha256": digest.hexdigest()})
    try:
        holder = registry.party_get(party_id=data["holder"], field="holder")
        asset = registry.asset_register(parcel=parcel, rights_type=data["rights_type"], holder=holder,
                                        evidence=evidence, county_code=county, registered_by=request.user)
    except Exception as exc:
        if not is_refusal(exc):
            raise
        status = show_refusal(form, exc, fields=REGISTER_FIELDS)
        return _register_page(request, form, status=status, problem=exc)
    messages.success(request, gettext("Asset %(code)s registered. Review the evidence, then confirm ownership.") % {
        "code": asset.code})
    return redirect("page-asset", code=asset.code)
