"""Pages for assets, their registration, valuation, pledges, transfers and retirement, and a bank's pledge book.

Each form calls one service of `ledger.registry.services` and shows its error next to the field it concerns, in the
service's own words; reads are fetches by code or id and the registry's QuerySets.
"""

import hashlib
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounting.models import AccountingRun
from config.common.pages import role_page_required
from config.common.pagetags import LABELS
from config.common.roles import BANK, BUREAU, EXCHANGE, has_role
from geo.errors import CountyScopeError
from geo.models import Parcel, user_county_code
from geo.svgmap import MapFeature, svg_map
from ledger.log.models import Entry
from ledger.registry import services as registry
from ledger.registry.errors import (
    AssetStateError,
    ParcelOverlapError,
    PledgeLimitError,
    RegistryError,
    RegistryForbiddenError,
    RegistryInputError,
    ValuationError,
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
    if status in Asset.STATUSES:
        assets = assets.filter(status=status)
    elif status == "pledged":
        assets = assets.filter(pledges__status=Pledge.ACTIVE).distinct()
    shown = list(assets[:ASSETS_PER_PAGE])
    pledged = set(Pledge.objects.filter(asset__in=shown, status=Pledge.ACTIVE).values_list("asset_id", flat=True))
    return render(request, "ledger/assets.html", {
        "assets": [(a, a.id in pledged) for a in shown], "query": query, "status": status,
        "statuses": [*Asset.STATUSES, "pledged"], "more": assets.count() > len(shown),
    })


# --- the asset page ----------------------------------------------------------------------------------------------


class ValueForm(forms.Form):
    run = forms.ModelChoiceField(AccountingRun.objects.none(), label=_("Accounting run"), empty_label=None)
    price_per_t_co2e = forms.DecimalField(label=_("Price per t CO2e"), min_value=Decimal(0), max_digits=18,
                                          decimal_places=4, initial=Decimal("85"))
    currency = forms.RegexField(r"^[A-Z]{3}$", label=_("Currency (ISO 4217)"), initial="CNY")

    def __init__(self, *args, asset: Asset, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = AccountingRun.objects.filter(
            status=AccountingRun.SUCCEEDED, results__parcel_id=asset.parcel_id).distinct()
        self.fields["run"].label_from_instance = lambda r: f"{gettext('Run')} {r.id} · {r.raster.epoch}"


class PledgeForm(forms.Form):
    amount = forms.DecimalField(label=_("Loan amount secured"), min_value=Decimal("0.01"), max_digits=24,
                                decimal_places=2)
    currency = forms.RegexField(r"^[A-Z]{3}$", label=_("Currency (ISO 4217)"), initial="CNY")
    term_months = forms.IntegerField(label=_("Term, months"), min_value=1, max_value=600, initial=36)


class TransferForm(forms.Form):
    to_holder = forms.ModelChoiceField(Party.objects.none(), label=_("New holder"), empty_label=None)
    trade_ref = forms.CharField(label=_("Trade reference"), max_length=100, required=False)

    def __init__(self, *args, asset: Asset, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_holder"].queryset = Party.objects.filter(kind__in=Party.HOLDER_KINDS).exclude(
            id=asset.holder_id).order_by("name")
        self.fields["to_holder"].label_from_instance = lambda p: f"{p.name} · {LABELS.get(p.kind, p.kind)}"


class RetireForm(forms.Form):
    beneficiary = forms.CharField(label=_("Beneficiary of the offset claim"), max_length=200)
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


def _asset_page(request, asset: Asset, *, value_form=None, pledge_form=None, transfer_form=None, retire_form=None,
                status=200):
    parcel = asset.parcel
    valuation = asset.valuation
    density = float(valuation.stock_t_c) / parcel.area_ha if valuation and parcel.area_ha > 0 else None
    title = f"{parcel.code} · {parcel.area_ha:.2f} ha" + (f" · {density:.1f} t C/ha" if density is not None else "")
    pledges = list(asset.pledges.select_related("pledgee").order_by("-id"))
    active = [p for p in pledges if p.status == Pledge.ACTIVE]
    bank_party = Party.objects.filter(user=request.user, kind=Party.BANK).first() if has_role(request.user,
                                                                                               BANK) else None
    own_county = has_role(request.user, BUREAU) and user_county_code(request.user) == asset.county_code
    return render(request, "ledger/asset.html", {
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
    }, status=status)


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
    except (AssetStateError, CountyScopeError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Ownership of asset %(code)s confirmed.") % {"code": asset.code})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(BUREAU)
def asset_value(request, code: str):
    asset = _asset(code)
    form = ValueForm(request.POST, asset=asset)
    if not form.is_valid():
        return _asset_page(request, asset, value_form=form, status=422)
    data = form.cleaned_data
    try:
        registry.asset_value(asset=asset, run=data["run"], county_code=user_county_code(request.user),
                             price_per_t_co2e=data["price_per_t_co2e"], currency=data["currency"],
                             valued_by=request.user)
    except (ValuationError, AssetStateError, CountyScopeError) as exc:
        form.add_error("price_per_t_co2e" if "price" in str(exc) else "run", str(exc))
        return _asset_page(request, asset, value_form=form, status=422)
    messages.success(request, gettext("Asset %(code)s valued from run %(run)s.") % {"code": asset.code,
                                                                              "run": data["run"].id})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(BANK)
def pledge_create(request, code: str):
    asset = _asset(code)
    form = PledgeForm(request.POST)
    if not form.is_valid():
        return _asset_page(request, asset, pledge_form=form, status=422)
    data = form.cleaned_data
    try:
        bank = registry.party_of_user(request.user, kind=Party.BANK)
        pledge = registry.pledge_create(asset=asset, pledgee=bank, amount=data["amount"], currency=data["currency"],
                                        term_months=data["term_months"], created_by=request.user)
    except PledgeLimitError as exc:
        form.add_error("amount", str(exc))
        return _asset_page(request, asset, pledge_form=form, status=409)
    except RegistryInputError as exc:
        form.add_error("currency" if "currency" in str(exc) else ("term_months" if "term" in str(exc) else "amount"),
                       str(exc))
        return _asset_page(request, asset, pledge_form=form, status=422)
    except (AssetStateError, RegistryForbiddenError) as exc:
        form.add_error(None, str(exc))
        return _asset_page(request, asset, pledge_form=form, status=409)
    messages.success(request, gettext("Pledge %(id)s registered on asset %(code)s.") % {"id": pledge.id,
                                                                                  "code": asset.code})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(EXCHANGE)
def asset_transfer(request, code: str):
    asset = _asset(code)
    form = TransferForm(request.POST, asset=asset)
    if not form.is_valid():
        return _asset_page(request, asset, transfer_form=form, status=422)
    data = form.cleaned_data
    try:
        registry.asset_transfer(asset=asset, to_holder=data["to_holder"], trade_ref=data["trade_ref"],
                                created_by=request.user)
    except (AssetStateError, RegistryInputError) as exc:
        form.add_error(None, str(exc))
        return _asset_page(request, asset, transfer_form=form, status=409)
    messages.success(request, gettext("Asset %(code)s transferred to %(holder)s.") % {
        "code": asset.code, "holder": data["to_holder"].name})
    return redirect("page-asset", code=asset.code)


@require_POST
@role_page_required(EXCHANGE)
def asset_retire(request, code: str):
    asset = _asset(code)
    form = RetireForm(request.POST)
    if not form.is_valid():
        return _asset_page(request, asset, retire_form=form, status=422)
    try:
        registry.asset_retire(asset=asset, created_by=request.user, **form.cleaned_data)
    except (AssetStateError, RegistryInputError) as exc:
        form.add_error(None, str(exc))
        return _asset_page(request, asset, retire_form=form, status=409)
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
    except (AssetStateError, RegistryForbiddenError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Pledge %(id)s released.") % {"id": pledge.id})
    if request.POST.get("back") == "pledges":
        return redirect("page-pledges")
    return redirect("page-asset", code=pledge.asset.code)


@role_page_required(BANK)
def pledge_book(request):
    """The signed-in bank's pledges, newest first, with their assets and a release button for active ones."""
    try:
        bank = registry.party_of_user(request.user, kind=Party.BANK)
    except RegistryForbiddenError as exc:
        return render(request, "ledger/pledges.html", {"pledges": [], "problem": str(exc)}, status=403)
    pledges = list(Pledge.objects.filter(pledgee=bank).select_related("asset", "asset__holder").order_by("-id"))
    active = [p for p in pledges if p.status == Pledge.ACTIVE]
    return render(request, "ledger/pledges.html", {
        "bank": bank, "pledges": pledges, "active_count": len(active),
        "active_totals": sorted(_totals_by_currency(active).items()),
    })


def _totals_by_currency(pledges) -> dict:
    totals = {}
    for pledge in pledges:
        totals[pledge.currency] = totals.get(pledge.currency, 0) + pledge.amount
    return totals


# --- registration ------------------------------------------------------------------------------------------------


class AssetRegisterForm(forms.Form):
    parcel_code = forms.CharField(label=_("Parcel code (forest-right certificate or parcel number)"), max_length=64)
    rights_type = forms.ChoiceField(label=_("Rights type"), choices=RIGHTS_TYPE_CHOICES)
    holder = forms.ModelChoiceField(Party.objects.filter(kind__in=[k for k in Party.KINDS if k not in (
        Party.BANK, Party.EXCHANGE, Party.BUREAU)]), label=_("Rights holder"), empty_label=None)
    evidence = forms.FileField(label=_("Evidence (certificate scan, survey or drone image)"), required=False,
                               help_text=_("Only its name and sha256 digest are recorded on the ledger."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rights_type"].choices = [(r, LABELS.get(r, r)) for r, _r in RIGHTS_TYPE_CHOICES]
        self.fields["holder"].label_from_instance = lambda p: f"{p.name} ({LABELS.get(p.kind, p.kind)})"


def _register_page(request, form=None, status=200):
    county = user_county_code(request.user)
    free = Parcel.objects.filter(county_code=county).exclude(
        assets__status__in=registry.OVERLAP_BLOCKING_STATUSES).order_by("code")
    return render(request, "ledger/register.html", {
        "form": form or AssetRegisterForm(), "county": county, "free_parcels": free[:500],
        "recent": Asset.objects.filter(county_code=county).select_related("parcel", "holder").order_by(
            "-created_at")[:10],
    }, status=status)


@role_page_required(BUREAU)
def asset_register(request):
    if request.method != "POST":
        return _register_page(request)
    form = AssetRegisterForm(request.POST, request.FILES)
    if not form.is_valid():
        return _register_page(request, form, status=422)
    data = form.cleaned_data
    county = user_county_code(request.user)
    parcel = Parcel.objects.filter(county_code=county, code=data["parcel_code"].strip()).first()
    if parcel is None:
        form.add_error("parcel_code", gettext("No parcel with code %(code)s in county %(county)s; import it first.") % {
            "code": data["parcel_code"], "county": county})
        return _register_page(request, form, status=422)
    evidence = []
    if data["evidence"] is not None:
        digest = hashlib.sha256()
        for chunk in data["evidence"].chunks():
            digest.update(chunk)
        evidence.append({"name": data["evidence"].name, "sha256": digest.hexdigest()})
    try:
        asset = registry.asset_register(parcel=parcel, rights_type=data["rights_type"], holder=data["holder"],
                                        evidence=evidence, county_code=county, registered_by=request.user)
    except (ParcelOverlapError, CountyScopeError) as exc:
        form.add_error("parcel_code", str(exc))
        return _register_page(request, form, status=409)
    except RegistryError as exc:
        form.add_error("holder" if "party" in str(exc) else "evidence", str(exc))
        return _register_page(request, form, status=422)
    messages.success(request, gettext("Asset %(code)s registered. Review the evidence, then confirm ownership.") % {
        "code": asset.code})
    return redirect("page-asset", code=asset.code)
