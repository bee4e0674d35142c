"""The few views that belong to no app: who am I, the home redirect, sign-in and sign-out."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.roles import user_roles


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


def home(request):
    """`/`: the county overview of the user's county (a bureau's own, else HOME_COUNTY_CODE); sign-in first."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    membership = getattr(request.user, "county_membership", None)
    county = membership.county_code if membership else settings.HOME_COUNTY_CODE
    return redirect("page-county", county_code=county)


class SignInView(auth_views.LoginView):
    template_name = "config/sign_in.html"
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    pass
