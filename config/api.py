"""Small API endpoints that belong to no single app."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.roles import user_roles


def paginated(request, view, queryset, serialize) -> Response:
    """One page of `queryset` (limit/offset, as REST_FRAMEWORK configures), serialized by `serialize(page)`."""
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serialize(page))


class WhoAmIView(APIView):
    """The signed-in user's name, roles and county."""

    @extend_schema(responses=inline_serializer("WhoAmI", {
        "username": serializers.CharField(),
        "roles": serializers.ListField(child=serializers.CharField()),
        "county": serializers.CharField(allow_null=True),
    }))
    def get(self, request):
        return Response({
            "username": request.user.get_username(),
            "roles": sorted(user_roles(request.user)),
            "county": getattr(getattr(request.user, "county_membership", None), "county_code", None),
        })
