"""REST doorways for method versions and accounting runs."""

from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounting.methods.spec import IPCC_CATEGORIES, METHOD_SPECS, method_spec
from accounting.methods.valuation import ValuationTerms
from accounting.models import AccountingRun, MethodVersion, ParcelResult
from accounting.services import accounting_run_create, method_version_create
from config.common.api import PAGE_PARAMETERS, Paged, page_of, page_response, paginated, problems
from config.common.roles import BUREAU, ROLES, role_required
from geo.errors import CountyScopeError, gettext_noop
from geo.models import Parcel, Raster, user_county_code


class MethodVersionOutput(serializers.ModelSerializer):
    class Meta:
        model = MethodVersion
        fields = ["id", "kind", "name", "parameters", "parameters_sha256", "created_at"]


# --- each method kind's parameters, as JSON Schema (from the kind's declaration in accounting.methods.spec) -------

_KEY_TYPES = {
    "lucode": "keys are land-cover codes as in the raster (integers, written as strings)",
    "category": f"keys are IPCC land-use categories: {', '.join(IPCC_CATEGORIES)} (spaces, hyphens and capitals "
                "are accepted, e.g. \"Forest land\")",
    "string": "keys are names",
}


def parameter_schema(declared: dict) -> dict:
    """The OpenAPI schema of one declared parameter (`Param.describe()`: name, type, description, unit, ...)."""
    kind = declared["type"]
    description = declared["description"] + (f" [{declared['unit']}]" if "unit" in declared else "")
    if kind in ("number", "integer"):
        schema = {"type": kind}
        if "minimum" in declared:
            schema["minimum"] = declared["minimum"]
            if declared.get("exclusive_minimum"):
                schema["exclusiveMinimum"] = True
        if "maximum" in declared:
            schema["maximum"] = declared["maximum"]
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "string":
        schema = {"type": "string", "minLength": 1}
        if "options" in declared:
            schema["enum"] = list(declared["options"])
    elif kind == "object":
        schema = object_schema(declared["fields"])
    elif kind == "mapping":
        schema = {"type": "object", "additionalProperties": parameter_schema(declared["values"])}
        description += f"; {_KEY_TYPES[declared['key_type']]}"
    elif kind == "list":
        schema = {"type": "array", "items": parameter_schema(declared["values"])}
    else:
        raise ValueError(f"unknown parameter type {kind!r} in {declared['name']}")
    schema["description"] = description
    if "default" in declared:
        schema["default"] = declared["default"]
    if declared.get("nullable"):
        schema["nullable"] = True
    return schema


def object_schema(fields: list[dict]) -> dict:
    """An object of these declared fields; like the validator, it refuses unknown keys."""
    schema = {"type": "object", "properties": {f["name"]: parameter_schema(f) for f in fields},
              "additionalProperties": False}
    required = [f["name"] for f in fields if f["required"]]
    if required:
        schema["required"] = required
    return schema


def _camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("_"))


def _method_input(kind: str) -> type[serializers.Serializer]:
    """The request body that publishes a method version of `kind`: documentation of MethodVersionInput's
    variants (the view validates with its InputSerializer, then the parameters against the kind's spec)."""
    spec = method_spec(kind)
    parameters = extend_schema_field(object_schema(spec["parameters"]), component_name=f"{_camel(kind)}Parameters")(
        type(f"{_camel(kind)}ParametersField", (serializers.JSONField,), {}))
    return type(f"{_camel(kind)}MethodInput", (serializers.Serializer,), {
        "__module__": __name__,
        "__doc__": spec["description"],
        "kind": serializers.ChoiceField(choices=[kind]),
        "name": serializers.CharField(required=False, allow_blank=True, max_length=200,
                                      help_text="a name for people, e.g. \"Pingwu forest pools 2026\""),
        "parameters": parameters(help_text=f"the {kind} parameters; GET /api/methods/kinds/ lists them too"),
    })


METHOD_EXAMPLES = [
    OpenApiExample("pool_table: InVEST carbon pool table", request_only=True, value={
        "kind": "pool_table", "name": "Pingwu pools 2026", "parameters": {
            "pools": [{"lucode": 10, "lulc_name": "tree cover", "c_above": 120.0, "c_below": 30.0, "c_soil": 80.0,
                       "c_dead": 10.0},
                      {"lucode": 30, "lulc_name": "grassland", "c_above": 2.5, "c_below": 10.0, "c_soil": 60.0,
                       "c_dead": 0.0}],
            "uncertainty_pct": {"area": 5.0, "c_above": 20.0, "c_below": 30.0, "c_soil": 40.0, "c_dead": 50.0}}}),
    OpenApiExample("ipcc_tier1: IPCC 2006 Tier 1 defaults", request_only=True, value={
        "kind": "ipcc_tier1", "name": "Tier 1, temperate continental forest", "parameters": {
            "categories": {
                "forest_land": {"ecological_zone": "temperate_continental_forest", "continent": "asia_continental",
                                "stand_age_class": ">20", "forest_type": "conifers", "soc": None},
                "grassland": {"grassland_climate_zone": "warm_temperate_wet", "soc": None}},
            "allow_unconfirmed_defaults": True}}),
    OpenApiExample("volume_bcef: growing-stock volume × BCEF", request_only=True, value={
        "kind": "volume_bcef", "name": "Forest inventory 2025", "parameters": {
            "classes": {"10": {"species": "Cunninghamia lanceolata", "bcef_group": "temperate_pines",
                               "ecological_zone": "temperate_continental_forest", "forest_type": "conifers"}},
            "zero_stock_classes": [80]}}),
]

METHOD_VERSION_INPUT = PolymorphicProxySerializer(
    component_name="MethodVersionInput", resource_type_field_name="kind",
    serializers={kind: _method_input(kind) for kind in sorted(METHOD_SPECS)})


class MethodParameterOutput(serializers.Serializer):
    """One declared parameter of a method kind."""

    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["number", "integer", "boolean", "string", "object", "mapping", "list"],
                                   help_text="object: fixed `fields`; mapping: keys of `key_type` to `values`; "
                                             "list: items of `values`")
    description = serializers.CharField()
    unit = serializers.CharField(required=False, help_text="e.g. t C/ha, %, m3/ha")
    required = serializers.BooleanField(help_text="must be given (no default)")
    default = serializers.JSONField(required=False, help_text="the value used when it is not given")
    minimum = serializers.FloatField(required=False)
    maximum = serializers.FloatField(required=False)
    exclusive_minimum = serializers.BooleanField(required=False, help_text="the minimum itself is refused")
    options = serializers.ListField(child=serializers.CharField(), required=False, help_text="the allowed strings")
    nullable = serializers.BooleanField(required=False, help_text="null is allowed")
    key_type = serializers.ChoiceField(choices=["lucode", "category", "string"], required=False,
                                       help_text="a mapping's keys: land-cover codes, IPCC categories or names")


# A parameter nests its fields and its values.
MethodParameterOutput._declared_fields["fields"] = MethodParameterOutput(many=True, required=False,
                                                                         help_text="an object's members")
MethodParameterOutput._declared_fields["values"] = MethodParameterOutput(required=False,
                                                                         help_text="a mapping's or list's items")


class MethodKindOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(METHOD_SPECS), help_text="the `kind` to publish with")
    description = serializers.CharField(help_text="what the method computes")
    parameters = MethodParameterOutput(many=True, help_text="its parameters, as POST /api/methods/ takes them")


class MethodKindListView(APIView):
    """Every method kind and the parameters it takes: what POST /api/methods/ accepts for each `kind`."""

    pagination_class = None

    def get_permissions(self):
        return [role_required(*ROLES)()]

    @extend_schema(operation_id="methods_kinds_list", summary="List method kinds and their parameters",
                   responses={200: MethodKindOutput(many=True), **problems(403)})
    def get(self, request):
        return Response(MethodKindOutput([method_spec(kind) for kind in sorted(METHOD_SPECS)], many=True).data)


class MethodVersionListView(Paged, APIView):
    """Carbon method versions: list them, or publish one (a bureau)."""

    def get_permissions(self):
        return [role_required(BUREAU)()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema_serializer(component_name="MethodVersionInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=sorted(METHOD_SPECS))
        name = serializers.CharField(required=False, allow_blank=True, max_length=200)
        parameters = serializers.JSONField()

    @extend_schema(summary="List method versions", responses=MethodVersionOutput(many=True))
    def get(self, request):
        return paginated(request, self, MethodVersion.objects.all(),
                         lambda page: MethodVersionOutput(page, many=True).data)

    @extend_schema(summary="Publish a carbon method version", description=(
        "A bureau publishes the parameters of a carbon method: `pool_table` (InVEST's carbon pool table, t C/ha "
        "per land-cover class), `ipcc_tier1` (IPCC 2006 Tier 1 defaults per land-use category, with overrides) "
        "or `volume_bcef` (growing-stock volume × BCEF × (1 + R) × CF per forest class). Each kind's parameters "
        "are in the request schema below and in GET /api/methods/kinds/. Unknown or out-of-range parameters are a "
        "422 problem naming each one in `errors`.\n\n"
        "Parameters are stored with their defaults written in and addressed by the sha256 of their canonical "
        "JSON: publishing the same parameters again answers 200 with the version already stored. A published "
        "version never changes; publish a new one instead."),
        examples=METHOD_EXAMPLES,
        request=METHOD_VERSION_INPUT, responses={201: MethodVersionOutput, 200: MethodVersionOutput,
                                                       **problems(400, 403, 422)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version, created = method_version_create(kind=data.validated_data["kind"],
                                                 parameters=data.validated_data["parameters"],
                                                 name=data.validated_data.get("name", ""), created_by=request.user)
        return Response(MethodVersionOutput(version).data, status=status.HTTP_201_CREATED if created else 200)


class MethodVersionDetailView(APIView):
    @extend_schema(summary="Get a method version", responses={200: MethodVersionOutput, **problems(404)})
    def get(self, request, method_id: int):
        return Response(MethodVersionOutput(get_object_or_404(MethodVersion, id=method_id)).data)


@extend_schema_serializer(component_name="RunProgress")
class RunProgressOutput(serializers.Serializer):
    parcels_done = serializers.IntegerField(help_text="parcels accounted so far")
    parcels_total = serializers.IntegerField(help_text="parcels in the run")


@extend_schema_serializer(component_name="RunValuation")
class RunValuationOutput(serializers.Serializer):
    """The run's valuation terms; null when the run values nothing."""

    price_per_tC = serializers.CharField(source="price_per_t_c", help_text="decimal string, money per t C")
    currency = serializers.CharField(help_text="ISO 4217 code")
    discount_rate_pct = serializers.CharField(allow_null=True, help_text="decimal string, percent a year")
    price_change_pct = serializers.CharField(allow_null=True, help_text="decimal string, percent a year")

    def to_representation(self, run: AccountingRun) -> dict | None:
        return None if run.price_per_t_c is None else super().to_representation(run)


class RunOutput(serializers.ModelSerializer):
    progress = RunProgressOutput(source="*")
    valuation = RunValuationOutput(source="*", allow_null=True)

    class Meta:
        model = AccountingRun
        fields = ["id", "status", "failure_reason", "progress", "method_version", "method_sha256", "raster",
                  "alt_raster", "start_year", "end_year", "county_code", "valuation", "uncertainty_approach", "seed",
                  "input_raster_sha256", "normalised_raster_sha256", "default_tables_sha256", "code_version",
                  "totals", "created_at", "started_at", "finished_at"]


class RunListView(Paged, APIView):
    """Accounting runs: list them, or start one (a bureau)."""

    def get_permissions(self):
        return [role_required(BUREAU)()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema_serializer(component_name="RunInput")
    class InputSerializer(serializers.Serializer):
        method_version = serializers.PrimaryKeyRelatedField(queryset=MethodVersion.objects.all())
        raster = serializers.PrimaryKeyRelatedField(queryset=Raster.objects.all())
        alt_raster = serializers.PrimaryKeyRelatedField(queryset=Raster.objects.all(), required=False)
        years = serializers.ListField(child=serializers.IntegerField(min_value=1900, max_value=2100), min_length=2,
                                      max_length=2, required=False)
        parcels = serializers.ListField(child=serializers.IntegerField(), required=False, allow_empty=False)
        county = serializers.RegexField(r"^\d{6}$", required=False)
        price_per_tC = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal(0), required=False)
        currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, default="CNY")
        discount_rate_pct = serializers.DecimalField(max_digits=7, decimal_places=4, required=False,
                                                     default=Decimal(0))
        price_change_pct = serializers.DecimalField(max_digits=7, decimal_places=4, required=False,
                                                    default=Decimal(0))
        uncertainty = serializers.ChoiceField(choices=[AccountingRun.APPROACH_1, AccountingRun.APPROACH_2],
                                              default=AccountingRun.APPROACH_1)
        # What the run stores (a signed 64-bit integer); a larger seed is a 400, not a database overflow.
        seed = serializers.IntegerField(required=False, default=20260101, min_value=-(2**63), max_value=2**63 - 1)

        def validate(self, attrs):
            if ("parcels" in attrs) == ("county" in attrs):
                raise serializers.ValidationError(gettext("give either parcels (ids) or county, not both or neither"))
            return attrs

    @extend_schema(summary="List accounting runs", responses=RunOutput(many=True))
    def get(self, request):
        return paginated(request, self, AccountingRun.objects.all(), lambda page: RunOutput(page, many=True).data)

    @extend_schema(summary="Start an accounting run", description=(
        "A bureau starts the carbon accounting of parcels of its county (`parcels` by id, or a whole `county`) "
        "over a land-cover `raster` with a published `method_version`. With `alt_raster` and `years` it also "
        "accounts the change between the two epochs; with `price_per_tC` it values the stocks (and the change, "
        "discounted). `uncertainty` chooses IPCC Approach 1 (error propagation) or 2 (Monte Carlo, with `seed`).\n\n"
        "The run goes on in the background (on a worker, or without a broker on a thread of the server): the "
        "answer is 202 with the run, in the state it is in then (`queued`, or `running` if it has started), and "
        "its URL in `Location`. Poll "
        "GET /api/runs/{id}/ until `status` is `succeeded` or `failed`, then read the figures per parcel at "
        "GET /api/runs/{id}/results/. Each figure says how much of its area had valid data; one bad parcel does "
        "not fail the run."),
        examples=[OpenApiExample("Account two parcels, valued at 60 CNY per t C", request_only=True, value={
            "method_version": 3, "raster": 1, "parcels": [101, 102], "price_per_tC": "60.00", "currency": "CNY",
            "uncertainty": "approach1"})],
        request=InputSerializer, responses={202: RunOutput, **problems(400, 403, 422)}, parameters=[
        OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[202], description="the run's URL")])
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        own_county = user_county_code(request.user)
        if "county" in v:
            parcels = Parcel.objects.filter(county_code=v["county"])
            county = v["county"]
        else:
            parcels = Parcel.objects.filter(id__in=v["parcels"])
            unknown = sorted(set(v["parcels"]) - set(parcels.values_list("id", flat=True)))
            if unknown:
                raise serializers.ValidationError({"parcels": [
                    gettext("no parcels with ids %(ids)s") % {"ids": unknown}]})
            counties = set(parcels.values_list("county_code", flat=True))
            county = counties.pop() if len(counties) == 1 else ""
        foreign = sorted(set(parcels.exclude(county_code=own_county).values_list("county_code", flat=True)))
        if foreign:
            raise CountyScopeError(gettext_noop("a bureau of county %(county)s cannot run accounting for county "
                                                "%(foreign)s"), county=own_county, foreign=", ".join(foreign),
                                   extensions={})
        valuation = None
        if "price_per_tC" in v:
            valuation = ValuationTerms(price_per_t_c=v["price_per_tC"], currency=v["currency"],
                                       discount_rate_pct=v["discount_rate_pct"],
                                       price_change_pct=v["price_change_pct"])
        run = accounting_run_create(
            method_version=v["method_version"], raster=v["raster"], alt_raster=v.get("alt_raster"), parcels=parcels,
            years=tuple(v["years"]) if "years" in v else None, valuation=valuation,
            uncertainty_approach=v["uncertainty"], seed=v["seed"], county_code=county, created_by=request.user)
        run.refresh_from_db()  # its state now: queued (or running already), whatever was true at its insert
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/runs/{run.id}/"})


class RunDetailView(APIView):
    @extend_schema(summary="Get an accounting run", description="The run's status and progress; once it has "
                   "succeeded, its totals.", responses={200: RunOutput, **problems(404)})
    def get(self, request, run_id: int):
        return Response(RunOutput(get_object_or_404(AccountingRun, id=run_id)).data)


class ParcelResultOutput(serializers.ModelSerializer):
    parcel_code = serializers.CharField(source="parcel.code")

    class Meta:
        model = ParcelResult
        fields = ["parcel", "parcel_code", "figures"]


RunResultPageOutput = page_of(
    "PaginatedRunResultList", ParcelResultOutput(many=True), run=serializers.IntegerField(help_text="the run's id"),
    status=serializers.ChoiceField(choices=AccountingRun.STATUSES),
    totals=serializers.JSONField(allow_null=True, help_text="the run's totals over all its parcels, once it ends"))


class RunResultsView(APIView):
    @extend_schema(operation_id="runs_results_list", summary="List a run's results per parcel", description=(
        "One page of the run's figures, one result per parcel (stocks in t C and t CO2e with their 95 % "
        "intervals, the area with valid data, values), with the run's status and totals."),
        parameters=PAGE_PARAMETERS,
                   responses={200: RunResultPageOutput, **problems(404)})
    def get(self, request, run_id: int):
        run = get_object_or_404(AccountingRun, id=run_id)
        results = run.results.select_related("parcel").order_by("parcel_id")
        return page_response(request, self, results, RunResultPageOutput, run=run.id, status=run.status,
                             totals=run.totals)
