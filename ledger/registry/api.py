"""REST doorways to the rights registry: check the input, call one service in `ledger.registry.services`, serialize.

Reads are open to every role. Writes: the bureau registers, confirms and values in its own county; a bank
pledges, and releases and enforces its own pledges; an exchange transfers and retires; banks and exchanges
subscribe webhooks; the auditor changes nothing. Every state-changing POST honours an `Idempotency-Key` header.
Money is {"amount": "<decimal string>", "currency": "CNY"}; stocks are decimal strings in t C (`stock_tC`).
"""


from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import Paged, paginated, problems
from config.common.roles import AUDITOR, BANK, BUREAU, EXCHANGE, role_required, user_roles
from geo.models import user_county_code
from ledger.log.api import EntryOutput
from ledger.log.models import Entry
from ledger.registry import services as registry
from ledger.registry.errors import RegistryForbiddenError
from ledger.registry.idempotency import idempotent
from ledger.registry.models import Asset, Party, Pledge
from ledger.registry.projection import asset_projection, pledge_projection, valuation_projection
from ledger.registry.services import PLEDGE_TERM_MONTHS_MAX

ANY_ROLE = (BUREAU, BANK, EXCHANGE, AUDITOR)
def _party(party_id: int, field: str) -> Party:
    return registry.party_get(party_id=party_id, field=field)


def _asset(code: str) -> Asset:
    return get_object_or_404(Asset.objects.select_related("parcel", "holder", "valuation"), code=code)


class Roles:
    """get_permissions: any role reads; `write_roles` post."""

    write_roles: tuple[str, ...] = ()

    def get_permissions(self):
        roles = ANY_ROLE if self.request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        return [role_required(*roles)()]


# --- output ----------------------------------------------------------------------------------------------------


class PartyOutput(serializers.ModelSerializer):
    class Meta:
        model = Party
        fields = ["id", "kind", "name", "uscc", "created_at"]


# Schemas of the dicts below (documentation only: the views build the dicts, these describe them).

class MoneyOutput(serializers.Serializer):
    amount = serializers.CharField(help_text="decimal string")
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. CNY")


class ValuationOutput(serializers.Serializer):
    valuation = serializers.IntegerField()
    run = serializers.IntegerField()
    parcel_result = serializers.IntegerField()
    method_sha256 = serializers.CharField()
    input_raster_sha256 = serializers.ListField(child=serializers.CharField())
    code_version = serializers.CharField()
    stock_tC = serializers.CharField(help_text="decimal string, t C")
    stock_tCO2e = serializers.CharField(help_text="decimal string, t CO2e")
    stock_ci95_tC = serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2,
                                          help_text="[low, high] decimal strings, t C")
    price_per_tC = MoneyOutput(required=False, help_text="the price, when given per t C")
    price_per_tCO2e = MoneyOutput(required=False, help_text="the price, when given per t CO2e")
    value = MoneyOutput()
    value_ci95_low = MoneyOutput()


class PledgeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.CharField(help_text="asset code")
    pledgee = serializers.IntegerField(help_text="party id of the bank")
    amount = MoneyOutput()
    term_months = serializers.IntegerField()
    ltv_limit_pct = serializers.CharField(help_text="decimal string")
    status = serializers.ChoiceField(choices=Pledge.STATUSES)
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class AssetSummaryOutput(serializers.Serializer):
    code = serializers.CharField()
    county = serializers.CharField()
    year = serializers.IntegerField()
    sequence = serializers.IntegerField()
    rights_type = serializers.ChoiceField(choices=Asset.RIGHTS_TYPES)
    status = serializers.ChoiceField(choices=Asset.STATUSES)
    holder = inline_serializer("AssetHolder", {"id": serializers.IntegerField(), "kind": serializers.CharField(),
                                               "name": serializers.CharField()})
    parcel = inline_serializer("AssetParcel", {"id": serializers.IntegerField(), "code": serializers.CharField(),
                                               "area_ha": serializers.FloatField()})
    valuation = ValuationOutput(allow_null=True)
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)


class AssetDetailOutput(AssetSummaryOutput):
    geometry = serializers.JSONField(help_text="the parcel's GeoJSON geometry (WGS84)")
    evidence = inline_serializer("AssetEvidence", {"name": serializers.CharField(),
                                                   "sha256": serializers.CharField()}, many=True)
    retirement = inline_serializer("AssetRetirement", {
        "id": serializers.IntegerField(), "holder": serializers.IntegerField(),
        "beneficiary": serializers.CharField(), "reason": serializers.CharField()}, allow_null=True)
    active_pledges = PledgeOutput(many=True)
    pledges = PledgeOutput(many=True)
    history = EntryOutput(many=True, help_text="the asset's ledger entries")


def asset_summary(asset: Asset) -> dict:
    return {
        "code": asset.code, "county": asset.county_code, "year": asset.year, "sequence": asset.sequence,
        "rights_type": asset.rights_type, "status": asset.status,
        "holder": {"id": asset.holder.id, "kind": asset.holder.kind, "name": asset.holder.name},
        "parcel": {"id": asset.parcel.id, "code": asset.parcel.code, "area_ha": asset.parcel.area_ha},
        "valuation": valuation_projection(asset.valuation) if asset.valuation_id else None,
        "created_at": asset.created_at.isoformat(),
        "confirmed_at": asset.confirmed_at and asset.confirmed_at.isoformat(),
    }


def pledge_output(pledge: Pledge) -> dict:
    return {**pledge_projection(pledge), "created_at": pledge.created_at.isoformat(),
            "closed_at": pledge.closed_at and pledge.closed_at.isoformat()}


def asset_detail(asset: Asset) -> dict:
    pledges = list(asset.pledges.select_related("asset").order_by("id"))
    projection = asset_projection(asset)
    return {
        **asset_summary(asset),
        "geometry": asset.parcel.geometry, "evidence": asset.evidence, "retirement": projection["retirement"],
        "active_pledges": [pledge_output(p) for p in pledges if p.status == Pledge.ACTIVE],
        "pledges": [pledge_output(p) for p in pledges],
        "history": EntryOutput(Entry.objects.for_asset(asset.code), many=True).data,
    }


# --- parties ---------------------------------------------------------------------------------------------------


class PartyListView(Paged, Roles, APIView):
    """Parties, paged; POST creates one. A bank or exchange user registers the party it acts for."""

    write_roles = (BUREAU, BANK, EXCHANGE)

    @extend_schema_serializer(component_name="PartyCreateInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Party.KINDS)
        name = serializers.CharField(max_length=200)
        uscc = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)

    @extend_schema(responses=PartyOutput(many=True))
    def get(self, request):
        return paginated(request, self, Party.objects.order_by("id"), lambda page: PartyOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: PartyOutput, **problems(400, 403, 422)})
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kind, roles, user = data.validated_data["kind"], user_roles(request.user), None
        if BUREAU not in roles:
            own_kind = BANK if BANK in roles else EXCHANGE
            if kind != own_kind:
                raise RegistryForbiddenError(f"a {own_kind} user registers only its own {own_kind} party, not a {kind}")
            user = request.user
        party = registry.party_create(kind=kind, name=data.validated_data["name"],
                                      uscc=data.validated_data.get("uscc") or None, user=user)
        return Response(PartyOutput(party).data, status=status.HTTP_201_CREATED)


class PartyDetailView(Roles, APIView):
    @extend_schema(responses={200: PartyOutput, **problems(404)})
    def get(self, request, party_id: int):
        return Response(PartyOutput(get_object_or_404(Party, id=party_id)).data)


# --- assets ----------------------------------------------------------------------------------------------------


class AssetListView(Paged, Roles, APIView):
    """Assets, paged and filterable (county, holder, status, bbox); POST registers one (bureau of its county)."""

    write_roles = (BUREAU,)

    class QuerySerializer(serializers.Serializer):
        county = serializers.RegexField(r"^\d{6}$", required=False)
        holder = serializers.IntegerField(required=False)
        status = serializers.ChoiceField(choices=Asset.STATUS_FILTERS, required=False,
                                         help_text="a status, or `pledged` for assets with an active pledge")
        bbox = serializers.CharField(required=False, help_text="min_lon,min_lat,max_lon,max_lat (WGS84)")

        def validate_bbox(self, value):
            try:
                box = [float(v) for v in value.split(",")]
            except ValueError:
                box = []
            if len(box) != 4 or box[0] > box[2] or box[1] > box[3]:
                raise serializers.ValidationError("bbox must be min_lon,min_lat,max_lon,max_lat with min <= max")
            return box

    @extend_schema_serializer(component_name="AssetRegisterInput")
    class InputSerializer(serializers.Serializer):
        class EvidenceSerializer(serializers.Serializer):
            name = serializers.CharField(max_length=200)
            sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$")

        parcel = serializers.IntegerField()
        rights_type = serializers.ChoiceField(choices=Asset.RIGHTS_TYPES)
        holder = serializers.IntegerField()
        evidence = EvidenceSerializer(many=True)

    @extend_schema(parameters=[QuerySerializer], responses=AssetSummaryOutput(many=True))
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        assets = Asset.objects.select_related("parcel", "holder", "valuation").order_by("code")
        if "county" in q:
            assets = assets.filter(county_code=q["county"])
        if "holder" in q:
            assets = assets.filter(holder_id=q["holder"])
        if "status" in q:
            assets = assets.with_status(q["status"])
        if "bbox" in q:
            min_lon, min_lat, max_lon, max_lat = q["bbox"]
            assets = assets.filter(parcel__min_lon__lte=max_lon, parcel__max_lon__gte=min_lon,
                                   parcel__min_lat__lte=max_lat, parcel__max_lat__gte=min_lat)
        return paginated(request, self, assets, lambda page: [asset_summary(a) for a in page])

    @extend_schema(request=InputSerializer, responses={201: AssetDetailOutput, **problems(400, 403, 409, 422)})
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parcel = registry.parcel_get(parcel_id=data.validated_data["parcel"])
        asset = registry.asset_register(parcel=parcel, rights_type=data.validated_data["rights_type"],
                                        holder=_party(data.validated_data["holder"], "holder"),
                                        evidence=data.validated_data["evidence"],
                                        county_code=user_county_code(request.user), registered_by=request.user)
        return Response(asset_detail(_asset(asset.code)), status=status.HTTP_201_CREATED)


class AssetDetailView(Roles, APIView):
    """One asset with holder, geometry, current valuation, pledges and its ledger history."""

    @extend_schema(responses={200: AssetDetailOutput, **problems(404)})
    def get(self, request, code: str):
        return Response(asset_detail(_asset(code)))


class AssetConfirmView(Roles, APIView):
    """The bureau of the asset's county confirms a registered asset."""

    write_roles = (BUREAU,)

    @extend_schema(request=None, responses={200: AssetDetailOutput, **problems(403, 404, 409, 422)})
    @idempotent
    def post(self, request, code: str):
        asset = registry.asset_confirm(asset=_asset(code), county_code=user_county_code(request.user))
        return Response(asset_detail(_asset(asset.code)))


class AssetValuationView(Roles, APIView):
    """Attach a succeeded run's result for the asset's parcel as its valuation (bureau of the county)."""

    write_roles = (BUREAU,)

    @extend_schema_serializer(component_name="AssetValuationInput")
    class InputSerializer(serializers.Serializer):
        run = serializers.IntegerField()
        price_per_tCO2e = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, min_value=0)
        currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)

    @extend_schema(request=InputSerializer, responses={201: ValuationOutput, **problems(400, 403, 404, 409, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset = _asset(code)
        run = registry.run_get(run_id=data.validated_data["run"])
        valuation = registry.asset_value(asset=asset, run=run, county_code=user_county_code(request.user),
                                         price_per_t_co2e=data.validated_data.get("price_per_tCO2e"),
                                         currency=data.validated_data.get("currency"), valued_by=request.user)
        return Response(valuation_projection(valuation), status=status.HTTP_201_CREATED)


class AssetPledgeView(Roles, APIView):
    """A bank registers a pledge on the asset."""

    write_roles = (BANK,)

    @extend_schema_serializer(component_name="PledgeCreateInput")
    class InputSerializer(serializers.Serializer):
        # Types only: the bounds (amount at least 0.01 with two decimals, term 1-600 months, LTV within the
        # registry's limit) are the service's, so that the API and the pages refuse alike.
        amount = serializers.DecimalField(max_digits=30, decimal_places=None,
                                          help_text="the loan amount secured, at least 0.01, two decimals at most")
        currency = serializers.RegexField(r"^[A-Z]{3}$")
        term_months = serializers.IntegerField(help_text=f"1 to {PLEDGE_TERM_MONTHS_MAX}")
        ltv_limit_pct = serializers.DecimalField(max_digits=30, decimal_places=None, required=False)

    @extend_schema(request=InputSerializer, responses={201: PledgeOutput, **problems(400, 403, 404, 409, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bank = registry.party_of_user(request.user, kind=Party.BANK)
        pledge = registry.pledge_create(asset=_asset(code), pledgee=bank, created_by=request.user,
                                        **data.validated_data)
        return Response(pledge_output(pledge), status=status.HTTP_201_CREATED)


class PledgeListView(Paged, Roles, APIView):
    """Pledges, paged, filterable by pledgee (a bank's party id, or `me` for the caller's bank), asset, county
    and status: a bank's book of pledged carbon sinks."""

    class QuerySerializer(serializers.Serializer):
        pledgee = serializers.RegexField(r"^(\d+|me)$", required=False,
                                         help_text="party id of the bank, or `me` for the caller's own bank")
        asset = serializers.CharField(required=False, help_text="asset code")
        county = serializers.RegexField(r"^\d{6}$", required=False)
        status = serializers.ChoiceField(choices=Pledge.STATUSES, required=False)

    @extend_schema(parameters=[QuerySerializer], responses={200: PledgeOutput(many=True), **problems(400, 403, 422)})
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        pledges = Pledge.objects.select_related("asset").order_by("id")
        if "pledgee" in q:
            pledgee = (registry.party_of_user(request.user, kind=Party.BANK).id if q["pledgee"] == "me"
                       else int(q["pledgee"]))
            pledges = pledges.filter(pledgee_id=pledgee)
        if "asset" in q:
            pledges = pledges.filter(asset__code=q["asset"])
        if "county" in q:
            pledges = pledges.filter(asset__county_code=q["county"])
        if "status" in q:
            pledges = pledges.filter(status=q["status"])
        return paginated(request, self, pledges, lambda page: [pledge_output(p) for p in page])


def _pledge(pledge_id: int) -> Pledge:
    return get_object_or_404(Pledge.objects.select_related("asset"), id=pledge_id)


class PledgeReleaseView(Roles, APIView):
    """The pledgee bank releases its active pledge."""

    write_roles = (BANK,)

    @extend_schema(request=None, responses={200: PledgeOutput, **problems(403, 404, 409, 422)})
    @idempotent
    def post(self, request, pledge_id: int):
        pledge = registry.pledge_release(pledge=_pledge(pledge_id),
                                         released_by=registry.party_of_user(request.user, kind=Party.BANK))
        return Response(pledge_output(pledge))


class PledgeEnforceView(Roles, APIView):
    """The pledgee bank enforces its active pledge: the asset passes to the bank or its nominee."""

    write_roles = (BANK,)

    @extend_schema_serializer(component_name="PledgeEnforceInput")
    class InputSerializer(serializers.Serializer):
        nominee = serializers.IntegerField(required=False, help_text="party that takes the asset; default the bank")

    @extend_schema(request=InputSerializer, responses={200: PledgeOutput, **problems(400, 403, 404, 409, 422)})
    @idempotent
    def post(self, request, pledge_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        nominee = data.validated_data.get("nominee")
        pledge = registry.pledge_enforce(pledge=_pledge(pledge_id),
                                         enforced_by=registry.party_of_user(request.user, kind=Party.BANK),
                                         nominee=_party(nominee, "nominee") if nominee is not None else None)
        return Response(pledge_output(pledge))


class AssetTransferView(Roles, APIView):
    """An exchange settles a trade of the asset to a new holder."""

    write_roles = (EXCHANGE,)

    @extend_schema_serializer(component_name="AssetTransferInput")
    class InputSerializer(serializers.Serializer):
        to_holder = serializers.IntegerField()
        trade_ref = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={201: inline_serializer("AssetTransferOutput", {
        "transfer": serializers.IntegerField(), "from_holder": serializers.IntegerField(),
        "to_holder": serializers.IntegerField(), "trade_ref": serializers.CharField(), "asset": AssetDetailOutput(),
    }), **problems(400, 403, 404, 409, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = registry.asset_transfer(asset=_asset(code), to_holder=_party(data.validated_data["to_holder"],
                                                                                "to_holder"),
                                           trade_ref=data.validated_data["trade_ref"], created_by=request.user)
        return Response({"transfer": transfer.id, "from_holder": transfer.from_holder_id,
                         "to_holder": transfer.to_holder_id, "trade_ref": transfer.trade_ref,
                         "asset": asset_detail(_asset(code))}, status=status.HTTP_201_CREATED)


class AssetRetireView(Roles, APIView):
    """An exchange retires the asset's carbon for an offset claim."""

    write_roles = (EXCHANGE,)

    @extend_schema_serializer(component_name="AssetRetireInput")
    class InputSerializer(serializers.Serializer):
        beneficiary = serializers.CharField(max_length=200)
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: AssetDetailOutput, **problems(400, 403, 404, 409, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        registry.asset_retire(asset=_asset(code), created_by=request.user, **data.validated_data)
        return Response(asset_detail(_asset(code)))
