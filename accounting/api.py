"""REST doorways for method versions and accounting runs."""

from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounting.methods.spec import METHOD_SPECS
from accounting.methods.valuation import ValuationTerms
from accounting.models import AccountingRun, MethodVersion, ParcelResult
from accounting.services import accounting_run_create, method_version_create
from config.common.api import PAGE_PARAMETERS, Paged, page_schema, paginated, problems
from config.common.roles import BUREAU, role_required
from geo.errors import CountyScopeError, gettext_noop
from geo.models import Parcel, Raster, user_county_code


class MethodVersionOutput(serializers.ModelSerializer):
    class Meta:
        model = MethodVersion
        fields = ["id", "kind", "name", "parameters", "parameters_sha256", "created_at"]


class MethodVersionListView(Paged, APIView):
    def get_permissions(self):
        return [role_required(BUREAU)()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema_serializer(component_name="MethodVersionInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=sorted(METHOD_SPECS))
        name = serializers.CharField(required=False, allow_blank=True, max_length=200)
        parameters = serializers.JSONField()

    @extend_schema(responses=MethodVersionOutput(many=True))
    def get(self, request):
        return paginated(request, self, MethodVersion.objects.all(),
                         lambda page: MethodVersionOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: MethodVersionOutput, 200: MethodVersionOutput,
                                                       **problems(400, 403, 422)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version, created = method_version_create(kind=data.validated_data["kind"],
                                                 parameters=data.validated_data["parameters"],
                                                 name=data.validated_data.get("name", ""), created_by=request.user)
        return Response(MethodVersionOutput(version).data, status=status.HTTP_201_CREATED if created else 200)


class MethodVersionDetailView(APIView):
    @extend_schema(responses={200: MethodVersionOutput, **problems(404)})
    def get(self, request, method_id: int):
        return Response(MethodVersionOutput(get_object_or_404(MethodVersion, id=method_id)).data)


class RunOutput(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    valuation = serializers.SerializerMethodField()

    class Meta:
        model = AccountingRun
        fields = ["id", "status", "failure_reason", "progress", "method_version", "method_sha256", "raster",
                  "alt_raster", "start_year", "end_year", "county_code", "valuation", "uncertainty_approach", "seed",
                  "input_raster_sha256", "default_tables_sha256", "code_version", "totals", "created_at",
                  "started_at", "finished_at"]

    @extend_schema_field(inline_serializer("RunProgress", {"parcels_done": serializers.IntegerField(),
                                                           "parcels_total": serializers.IntegerField()}))
    def get_progress(self, run) -> dict:
        return {"parcels_done": run.parcels_done, "parcels_total": run.parcels_total}

    @extend_schema_field(inline_serializer("RunValuation", {
        "price_per_tC": serializers.CharField(help_text="decimal string"), "currency": serializers.CharField(),
        "discount_rate_pct": serializers.CharField(help_text="decimal string"),
        "price_change_pct": serializers.CharField(help_text="decimal string")}, allow_null=True))
    def get_valuation(self, run) -> dict | None:
        if run.price_per_t_c is None:
            return None
        return {"price_per_tC": str(run.price_per_t_c), "currency": run.currency,
                "discount_rate_pct": str(run.discount_rate_pct), "price_change_pct": str(run.price_change_pct)}


class RunListView(Paged, APIView):
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
        seed = serializers.IntegerField(required=False, default=20260101)

        def validate(self, attrs):
            if ("parcels" in attrs) == ("county" in attrs):
                raise serializers.ValidationError(gettext("give either parcels (ids) or county, not both or neither"))
            return attrs

    @extend_schema(responses=RunOutput(many=True))
    def get(self, request):
        return paginated(request, self, AccountingRun.objects.all(), lambda page: RunOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={202: RunOutput, **problems(400, 403, 422)}, parameters=[
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
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/runs/{run.id}/"})


class RunDetailView(APIView):
    @extend_schema(responses={200: RunOutput, **problems(404)})
    def get(self, request, run_id: int):
        return Response(RunOutput(get_object_or_404(AccountingRun, id=run_id)).data)


class ParcelResultOutput(serializers.ModelSerializer):
    parcel_code = serializers.CharField(source="parcel.code")

    class Meta:
        model = ParcelResult
        fields = ["parcel", "parcel_code", "figures"]


class RunResultsView(APIView):
    @extend_schema(operation_id="runs_results_list", parameters=PAGE_PARAMETERS, responses={200: page_schema(
        "PaginatedRunResultList", ParcelResultOutput(many=True), run=serializers.IntegerField(),
        status=serializers.ChoiceField(choices=AccountingRun.STATUSES), totals=serializers.JSONField(allow_null=True),
    ), **problems(404)})
    def get(self, request, run_id: int):
        run = get_object_or_404(AccountingRun, id=run_id)
        results = run.results.select_related("parcel").order_by("parcel_id")
        response = paginated(request, self, results, lambda page: ParcelResultOutput(page, many=True).data)
        response.data["run"] = run.id
        response.data["status"] = run.status
        response.data["totals"] = run.totals
        return response
