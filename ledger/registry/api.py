"""REST doorways to the rights registry: check the input, call one service in `ledger.registry.services`, serialize.

Reads are open to every role. Writes: the bureau registers, confirms and values in its own county; a bank
pledges, and releases and enforces its own pledges; an exchange transfers and retires; banks and exchanges
subscribe webhooks; the auditor changes nothing. Every state-changing POST honours an `Idempotency-Key` header.
Money is {"amount": "<decimal string>", "currency": "CNY"}; stocks are decimal strings in t C (`stock_tC`).

Concurrency: GET /api/assets/{code}/ gives the asset's `ETag`; every write that changes the asset (confirm, value,
pledge, transfer, retire, and release or enforce of one of its pledges) takes it back in `If-Match`, and a transfer
also takes `expected_holder`. When the asset has changed since, the write is refused with 412 and changes nothing.
"""


from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.http import parse_etags
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.api import (
    CACHE_REVALIDATE,
    NOT_MODIFIED,
    IsoDateTimeField,
    MoneyOutput,
    Paged,
    cache_parameters,
    conditional,
    paginated,
    problems,
)
from config.common.roles import AUDITOR, BANK, BUREAU, EXCHANGE, role_required, user_roles
from geo.models import user_county_code
from ledger.log.api import EntryOutput
from ledger.log.models import Entry
from ledger.registry import services as registry
from ledger.registry.errors import RegistryForbiddenError
from ledger.registry.idempotency import idempotent
from ledger.registry.models import Asset, Party, Pledge, Valuation
from ledger.registry.projection import asset_projection, pledge_projection, valuation_projection
from ledger.registry.services import PLEDGE_TERM_MONTHS_MAX

ANY_ROLE = (BUREAU, BANK, EXCHANGE, AUDITOR)


def _party(party_id: int, field: str) -> Party:
    return registry.party_get(party_id=party_id, field=field)


def _asset(code: str) -> Asset:
    return get_object_or_404(Asset.objects.select_related("parcel", "holder", "valuation"), code=code)


def _asset_detail(code: str) -> Asset:
    """The asset with everything AssetDetailOutput shows, in a fixed number of queries."""
    return get_object_or_404(Asset.objects.select_related("parcel", "holder", "valuation", "retirement")
                             .prefetch_related(Prefetch("pledges", queryset=Pledge.objects.order_by("id"))),
                             code=code)


IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER,
    description="Optional. The asset's ETag from GET /api/assets/{code}/: the change is made only if the asset has "
                "not changed since (checked under the asset's lock), else 412 `precondition-failed` naming its "
                "current `etag`. `*` matches any state.")


def _if_match(request) -> list[str] | None:
    """The entity tags of the request's If-Match header; None without one. A header that names none in RFC 9110's
    syntax (an unquoted tag, say) is kept as written, so that it matches nothing and the 412 shows it."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    return parse_etags(header) or [header.strip()]


class Roles:
    """get_permissions: any role reads; `write_roles` post."""

    write_roles: tuple[str, ...] = ()

    def get_permissions(self):
        roles = ANY_ROLE if self.request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        return [role_required(*roles)()]


# --- output ---------------------------------------------------------------------------------------------------
# Each answer is the `.data` of one of these serializers: the schema is generated from the same classes.


class PartyOutput(serializers.ModelSerializer):
    class Meta:
        model = Party
        fields = ["id", "kind", "name", "uscc", "created_at"]


class ValuationOutput(serializers.Serializer):
    """A valuation, exactly as its `asset.value` ledger entry records it (without "asset")."""

    valuation = serializers.IntegerField(help_text="the valuation's id")
    run = serializers.IntegerField(help_text="the accounting run whose result it takes")
    parcel_result = serializers.IntegerField(help_text="that run's result for the asset's parcel")
    method_sha256 = serializers.CharField(help_text="hex sha256 of the method version's parameters")
    input_raster_sha256 = serializers.ListField(child=serializers.CharField(), help_text="hex sha256 of each raster")
    default_tables_sha256 = serializers.CharField(
        required=False, allow_blank=True,
        help_text="hex sha256 of the shipped default tables the method read (absent on valuations recorded before "
                  "it was kept; empty for a run that predates it)")
    normalised_raster_sha256 = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="hex sha256 of the normalised copy of each raster, the bytes the engine read (absent on "
                  "valuations recorded before it was kept)")
    code_version = serializers.CharField(help_text="the code version that computed the run")
    stock_tC = serializers.CharField(help_text="decimal string, t C")
    stock_tCO2e = serializers.CharField(help_text="decimal string, t CO2e")
    stock_ci95_tC = serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2,
                                          help_text="[low, high] of the 95 % interval, decimal strings, t C")
    price_per_tC = MoneyOutput(required=False, help_text="the price, when given per t C")
    price_per_tCO2e = MoneyOutput(required=False, help_text="the price, when given per t CO2e")
    value = MoneyOutput(help_text="stock × price")
    value_ci95_low = MoneyOutput(help_text="the value at the stock's lower 95 % bound: what pledges lend against")

    def to_representation(self, valuation: Valuation) -> dict:
        # The projection is already this shape, in JSON values (the fields above are its schema, and the tests hold
        # every answer to the schema): a page of 50 assets need not walk 15 fields 50 times.
        return valuation_projection(valuation)


class PledgeOutput(serializers.Serializer):
    """A pledge (lien) as the ledger records it, with when it was created and closed."""

    id = serializers.IntegerField()
    asset = serializers.CharField(help_text="asset code")
    pledgee = serializers.IntegerField(help_text="party id of the bank")
    amount = MoneyOutput(help_text="the loan amount secured")
    term_months = serializers.IntegerField()
    ltv_limit_pct = serializers.CharField(help_text="loan-to-value limit, percent of the valuation's lower 95 % "
                                                    "bound; decimal string")
    status = serializers.ChoiceField(choices=Pledge.STATUSES)
    created_at = IsoDateTimeField()
    closed_at = IsoDateTimeField(allow_null=True, help_text="when released or enforced")

    def to_representation(self, pledge: Pledge) -> dict:
        # as ValuationOutput: the projection is this shape already
        return {**pledge_projection(pledge), "created_at": pledge.created_at.isoformat(),
                "closed_at": None if pledge.closed_at is None else pledge.closed_at.isoformat()}


class AssetHolderSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="party id")
    kind = serializers.ChoiceField(choices=Party.KINDS)
    name = serializers.CharField()


class AssetParcelSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="parcel id")
    code = serializers.CharField(help_text="the parcel's code in its county")
    area_ha = serializers.FloatField(help_text="geodesic area, hectares")


class AssetEvidenceSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="document or imagery name")
    sha256 = serializers.CharField(help_text="hex sha256 of its bytes")


class AssetRetirementSerializer(serializers.Serializer):
    """The asset's retirement for an offset claim; null unless the asset is retired."""

    id = serializers.IntegerField()
    holder = serializers.IntegerField(help_text="party id of the holder that retired it")
    beneficiary = serializers.CharField()
    reason = serializers.CharField()

    def to_representation(self, asset: Asset) -> dict | None:
        retirement = asset_projection(asset)["retirement"]
        return None if retirement is None else super().to_representation(retirement)


class AssetSummaryOutput(serializers.Serializer):
    code = serializers.CharField(help_text="<county>-<year>-<sequence>, e.g. 510727-2026-000001")
    county = serializers.CharField(source="county_code", help_text="6-digit county code (GB/T 2260)")
    year = serializers.IntegerField(help_text="year of registration")
    sequence = serializers.IntegerField(help_text="serial number in the county and year")
    rights_type = serializers.ChoiceField(choices=Asset.RIGHTS_TYPES)
    status = serializers.ChoiceField(choices=Asset.STATUSES)
    holder = AssetHolderSerializer()
    parcel = AssetParcelSerializer()
    valuation = ValuationOutput(allow_null=True, help_text="the current valuation, if any")
    created_at = IsoDateTimeField()
    confirmed_at = IsoDateTimeField(allow_null=True)


class AssetDetailOutput(AssetSummaryOutput):
    geometry = serializers.JSONField(source="parcel.geometry", help_text="the parcel's GeoJSON geometry (WGS84)")
    evidence = AssetEvidenceSerializer(many=True)
    retirement = AssetRetirementSerializer(source="*", allow_null=True)
    active_pledges = serializers.SerializerMethodField()
    pledges = PledgeOutput(many=True, help_text="every pledge of the asset, oldest first")
    history = serializers.SerializerMethodField()

    @extend_schema_field(PledgeOutput(many=True, help_text="the pledges now in force, in rank order"))
    def get_active_pledges(self, asset: Asset) -> list:
        return PledgeOutput([p for p in asset.pledges.all() if p.status == Pledge.ACTIVE], many=True).data

    @extend_schema_field(EntryOutput(many=True, help_text="the asset's ledger entries, in log order"))
    def get_history(self, asset: Asset) -> list:
        return EntryOutput(Entry.objects.for_asset(asset.code), many=True).data


class AssetTransferOutput(serializers.Serializer):
    """A settled transfer and the asset after it. The instance is {"transfer": Transfer, "asset": Asset}."""

    transfer = serializers.IntegerField(source="transfer.id", help_text="the transfer's id")
    from_holder = serializers.IntegerField(source="transfer.from_holder_id", help_text="party id")
    to_holder = serializers.IntegerField(source="transfer.to_holder_id", help_text="party id")
    trade_ref = serializers.CharField(source="transfer.trade_ref", help_text="the exchange's trade reference")
    asset = AssetDetailOutput()


# --- parties ---------------------------------------------------------------------------------------------------


class PartyListView(Paged, Roles, APIView):
    """Parties: rights holders (collectives, companies, people), banks and exchanges."""

    write_roles = (BUREAU, BANK, EXCHANGE)

    @extend_schema_serializer(component_name="PartyCreateInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Party.KINDS)
        name = serializers.CharField(max_length=200)
        uscc = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)

    @extend_schema(summary="List parties", responses=PartyOutput(many=True))
    def get(self, request):
        return paginated(request, self, Party.objects.order_by("id"), lambda page: PartyOutput(page, many=True).data)

    @extend_schema(summary="Create a party", description=(
        "A bureau creates any party; a bank or exchange user creates the one party it acts for, of its own kind. "
        "Organisations give their unified social credit code (`uscc`, 18 characters, check digit verified). "
        "Recorded on the ledger as `party.create`."),
        examples=[OpenApiExample("A village collective", request_only=True, value={
            "kind": "collective", "name": "Guanba village collective", "uscc": "91350100M000100Y43"})],
        request=InputSerializer, responses={201: PartyOutput, **problems(400, 403, 422)})
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
    @extend_schema(summary="Get a party", responses={200: PartyOutput, **problems(404)})
    def get(self, request, party_id: int):
        return Response(PartyOutput(get_object_or_404(Party, id=party_id)).data)


# --- assets ----------------------------------------------------------------------------------------------------


class AssetListView(Paged, Roles, APIView):
    """Registered ecological assets."""

    write_roles = (BUREAU,)

    class QuerySerializer(serializers.Serializer):
        county = serializers.RegexField(r"^\d{6}$", required=False)
        holder = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                          help_text="party id of the holder (GET /api/parties/)")
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

        parcel = serializers.IntegerField(help_text="parcel id (GET /api/parcels/), a parcel of your county")
        rights_type = serializers.ChoiceField(choices=Asset.RIGHTS_TYPES)
        holder = serializers.IntegerField(help_text="party id of the rights holder: a collective, company, "
                                                     "household or individual (GET /api/parties/)")
        evidence = EvidenceSerializer(many=True)

    @extend_schema(operation_id="assets_list", summary="List assets", description=(
        "Assets in code order, paged, filtered by county, holder (party id), status and a WGS84 bounding box "
        "that their parcel's bounding box intersects. Each shows its holder, parcel and current valuation."),
        parameters=[QuerySerializer],
                   responses={200: AssetSummaryOutput(many=True), **problems(400)})
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        # a summary shows neither the parcel's geometry nor the evidence: not read, not decoded
        assets = (Asset.objects.select_related("parcel", "holder", "valuation").defer("parcel__geometry", "evidence")
                  .order_by("code"))
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
        return paginated(request, self, assets, lambda page: AssetSummaryOutput(page, many=True).data)

    @extend_schema(summary="Register an asset", description=(
        "The bureau of the parcel's county registers the rights over a parcel for a holder, with the sha256 of "
        "each evidence document (rights certificate, survey, imagery). The asset gets the code "
        "`<county>-<year>-<sequence>` and the status `registered`; the bureau then confirms it.\n\n"
        "Land is registered once: a parcel that overlaps an active asset by more than the registry's tolerance "
        "is a 409 problem naming that asset (`asset_code`, `overlap_ha`). Recorded as `asset.register`."),
        examples=[OpenApiExample("Forest land ownership of a village collective", request_only=True, value={
            "parcel": 101, "rights_type": "forest_land_ownership", "holder": 7, "evidence": [
                {"name": "forest-right certificate 2026-0042.pdf",
                 "sha256": "9f2b5c1e0a7d4b3c8e6f1a2d5c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a291"}]})],
        request=InputSerializer, responses={201: AssetDetailOutput, **problems(400, 403, 409, 422)})
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parcel = registry.parcel_get(parcel_id=data.validated_data["parcel"])
        asset = registry.asset_register(parcel=parcel, rights_type=data.validated_data["rights_type"],
                                        holder=_party(data.validated_data["holder"], "holder"),
                                        evidence=data.validated_data["evidence"],
                                        county_code=user_county_code(request.user), registered_by=request.user)
        return Response(AssetDetailOutput(_asset_detail(asset.code)).data, status=status.HTTP_201_CREATED)


class AssetDetailView(Roles, APIView):
    @extend_schema(summary="Get an asset", description=(
        "One asset with its holder, parcel geometry, evidence, current valuation, pledges (active ones in rank "
        "order) and every ledger entry that concerns it.\n\n"
        "`ETag` names the asset's state (`\"a-<code>-<seq>\"`, `seq` being its last ledger entry): send it back in "
        "`If-Match` on a write to make sure nobody changed the asset in between, or in `If-None-Match` to get 304 "
        "while it is unchanged."),
        parameters=cache_parameters(cache_control=CACHE_REVALIDATE),
        responses={200: AssetDetailOutput, **NOT_MODIFIED, **problems(404)})
    def get(self, request, code: str):
        etag = registry.asset_etag(asset_code=code)
        if etag is None:
            raise Http404
        return conditional(request, etag=etag, cache_control=CACHE_REVALIDATE,
                           build=lambda: Response(AssetDetailOutput(_asset_detail(code)).data))


class AssetConfirmView(Roles, APIView):
    write_roles = (BUREAU,)

    @extend_schema(summary="Confirm an asset", description=(
        "The bureau of the asset's county confirms a registered asset, after checking its evidence. Only a "
        "confirmed asset can be valued for pledging, pledged or transferred. Recorded as `asset.confirm`."),
        parameters=[IF_MATCH_PARAMETER],
        request=None, responses={200: AssetDetailOutput, **problems(403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, code: str):
        asset = registry.asset_confirm(asset=_asset(code), county_code=user_county_code(request.user),
                                       if_match=_if_match(request))
        return Response(AssetDetailOutput(_asset_detail(asset.code)).data)


class AssetValuationView(Roles, APIView):
    write_roles = (BUREAU,)

    @extend_schema_serializer(component_name="AssetValuationInput")
    class InputSerializer(serializers.Serializer):
        run = serializers.IntegerField(help_text="id of a succeeded accounting run with a result for the "
                                                  "asset's parcel (GET /api/runs/)")
        price_per_tCO2e = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, min_value=0)
        currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)

    @extend_schema(summary="Value an asset", description=(
        "The bureau of the asset's county values it with the result of a succeeded accounting run for the "
        "asset's parcel: its carbon stock (t C, with the 95 % interval) times a price, given here per t CO2e "
        "(`price_per_tCO2e` and `currency`) or taken from the run's own price per t C. The money value at the "
        "stock's lower 95 % bound (`value_ci95_low`) is what pledges lend against. The valuation becomes the "
        "asset's current one and every active pledge's cover is recomputed. Recorded as `asset.value`."),
        examples=[OpenApiExample("At 80 CNY per t CO2e", request_only=True, value={
            "run": 12, "price_per_tCO2e": "80.00", "currency": "CNY"})],
        parameters=[IF_MATCH_PARAMETER],
        request=InputSerializer, responses={201: ValuationOutput, **problems(400, 403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset = _asset(code)
        run = registry.run_get(run_id=data.validated_data["run"])
        valuation = registry.asset_value(asset=asset, run=run, county_code=user_county_code(request.user),
                                         price_per_t_co2e=data.validated_data.get("price_per_tCO2e"),
                                         currency=data.validated_data.get("currency"), valued_by=request.user,
                                         if_match=_if_match(request))
        return Response(ValuationOutput(valuation).data, status=status.HTTP_201_CREATED)


class AssetPledgeView(Roles, APIView):
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

    @extend_schema(summary="Pledge an asset", description=(
        "A bank registers a pledge (lien) on a confirmed, valued asset as collateral for a loan. All active "
        "pledges on the asset together may not exceed the loan-to-value limit (the registry's policy, or the "
        "lower `ltv_limit_pct` the bank asks for) of the valuation's lower 95 % bound; beyond it the pledge is "
        "refused with a 409 problem. Pledges rank in the order they are created. A pledged asset cannot be transferred "
        "or retired until every pledge is released. Recorded as `pledge.create`; send an `Idempotency-Key` to "
        "retry safely."),
        examples=[OpenApiExample("A 3-year loan of 1 000 000 CNY", request_only=True, value={
            "amount": "1000000.00", "currency": "CNY", "term_months": 36, "ltv_limit_pct": "40"})],
        parameters=[IF_MATCH_PARAMETER],
        request=InputSerializer, responses={201: PledgeOutput, **problems(400, 403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bank = registry.party_of_user(request.user, kind=Party.BANK)
        pledge = registry.pledge_create(asset=_asset(code), pledgee=bank, created_by=request.user,
                                        if_match=_if_match(request), **data.validated_data)
        return Response(PledgeOutput(pledge).data, status=status.HTTP_201_CREATED)


class PledgeListView(Paged, Roles, APIView):

    class QuerySerializer(serializers.Serializer):
        pledgee = serializers.RegexField(r"^([1-9]\d{0,17}|me)$", required=False,  # an id within 64 bits
                                         help_text="party id of the bank, or `me` for the caller's own bank")
        asset = serializers.CharField(required=False, help_text="asset code")
        county = serializers.RegexField(r"^\d{6}$", required=False)
        status = serializers.ChoiceField(choices=Pledge.STATUSES, required=False)

    @extend_schema(operation_id="pledges_list", summary="List pledges", description=(
        "Pledges in creation order, paged, filtered by pledgee (a bank's party id, or `me` for the caller's own "
        "bank), asset, county and status: a bank's book of pledged carbon sinks."),
        parameters=[QuerySerializer], responses={200: PledgeOutput(many=True), **problems(400, 403, 422)})
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
        return paginated(request, self, pledges, lambda page: PledgeOutput(page, many=True).data)


def _pledge(pledge_id: int) -> Pledge:
    return get_object_or_404(Pledge.objects.select_related("asset"), id=pledge_id)


class PledgeReleaseView(Roles, APIView):
    write_roles = (BANK,)

    @extend_schema(summary="Release a pledge", description=(
        "The pledgee bank releases its active pledge (the loan is repaid). Recorded as `pledge.release`. "
        "`If-Match` takes the ETag of the pledge's asset."),
        parameters=[IF_MATCH_PARAMETER],
        request=None, responses={200: PledgeOutput, **problems(403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, pledge_id: int):
        pledge = registry.pledge_release(pledge=_pledge(pledge_id),
                                         released_by=registry.party_of_user(request.user, kind=Party.BANK),
                                         if_match=_if_match(request))
        return Response(PledgeOutput(pledge).data)


class PledgeEnforceView(Roles, APIView):
    write_roles = (BANK,)

    @extend_schema_serializer(component_name="PledgeEnforceInput")
    class InputSerializer(serializers.Serializer):
        nominee = serializers.IntegerField(required=False, help_text="party that takes the asset; default the bank")

    @extend_schema(summary="Enforce a pledge", description=(
        "The pledgee bank enforces its active pledge on default: the asset passes to the bank, or to the "
        "`nominee` party it names. Recorded as `pledge.enforce`. `If-Match` takes the ETag of the pledge's asset."),
        parameters=[IF_MATCH_PARAMETER],
        request=InputSerializer, responses={200: PledgeOutput, **problems(400, 403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, pledge_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        nominee = data.validated_data.get("nominee")
        pledge = registry.pledge_enforce(pledge=_pledge(pledge_id),
                                         enforced_by=registry.party_of_user(request.user, kind=Party.BANK),
                                         nominee=_party(nominee, "nominee") if nominee is not None else None,
                                         if_match=_if_match(request))
        return Response(PledgeOutput(pledge).data)


class AssetTransferView(Roles, APIView):
    write_roles = (EXCHANGE,)

    @extend_schema_serializer(component_name="AssetTransferInput")
    class InputSerializer(serializers.Serializer):
        to_holder = serializers.IntegerField(help_text="party id of the new holder: a collective, company, "
                                                        "household or individual (GET /api/parties/)")
        trade_ref = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        expected_holder = serializers.IntegerField(
            required=False, help_text="party id of the holder the trade was made with: if the asset is no longer "
                                      "theirs when the transfer settles, it is refused with 412")

    @extend_schema(summary="Transfer an asset", description=(
        "An exchange settles a trade of a confirmed asset: its rights pass to `to_holder`, with the exchange's "
        "`trade_ref`. A pledged asset is refused with a 409 problem until its pledges are released. Recorded as "
        "`asset.transfer`; the answer shows the transfer and the asset after it.\n\n"
        "Two trades of one asset cannot both settle against the same state: give the holder you traded with in "
        "`expected_holder`, or the asset's ETag in `If-Match`, and a transfer that comes second is refused with "
        "412 `precondition-failed`, naming the asset's current `holder` and `etag`."),
        examples=[OpenApiExample("Settle trade T-2026-0315", request_only=True, value={
            "to_holder": 12, "trade_ref": "T-2026-0315", "expected_holder": 7})],
        parameters=[IF_MATCH_PARAMETER],
        request=InputSerializer, responses={201: AssetTransferOutput, **problems(400, 403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = registry.asset_transfer(asset=_asset(code), to_holder=_party(data.validated_data["to_holder"],
                                                                                "to_holder"),
                                           trade_ref=data.validated_data["trade_ref"], created_by=request.user,
                                           if_match=_if_match(request),
                                           expected_holder=data.validated_data.get("expected_holder"))
        return Response(AssetTransferOutput({"transfer": transfer, "asset": _asset_detail(code)}).data,
                        status=status.HTTP_201_CREATED)


class AssetRetireView(Roles, APIView):
    write_roles = (EXCHANGE,)

    @extend_schema_serializer(component_name="AssetRetireInput")
    class InputSerializer(serializers.Serializer):
        beneficiary = serializers.CharField(max_length=200)
        reason = serializers.CharField(max_length=500)

    @extend_schema(summary="Retire an asset", description=(
        "An exchange retires the asset's carbon for an offset claim by a `beneficiary`. A retired asset does "
        "nothing more (no valuation, pledge, transfer or second retirement), and its land stays registered. "
        "Recorded as `asset.retire`."),
        parameters=[IF_MATCH_PARAMETER],
        request=InputSerializer, responses={200: AssetDetailOutput, **problems(400, 403, 404, 409, 412, 422)})
    @idempotent
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        registry.asset_retire(asset=_asset(code), created_by=request.user, if_match=_if_match(request),
                              **data.validated_data)
        return Response(AssetDetailOutput(_asset_detail(code)).data)
