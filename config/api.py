"""Small API endpoints that belong to no single app."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.roles import user_roles
from geo.models import user_county_code


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
            "county": user_county_code(request.user),
        })
