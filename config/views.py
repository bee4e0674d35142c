"""The few views that belong to no app: who am I, the home redirect, sign-in and sign-out, the user's API token."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.pages import role_page_required
from config.common.roles import user_roles
from geo.accounts import api_token_rotate


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


@never_cache  # the page shows a secret: no browser or proxy keeps a copy
@require_http_methods(["GET", "HEAD", "POST"])
@role_page_required()
def api_token_page(request):
    """`/accounts/token/`: the signed-in user's own API token. POST (CSRF-protected) replaces it with a new one, or
    issues the first; the old key stops working at once. GET only shows: a user without a token gets a button."""
    if request.method == "POST":
        api_token_rotate(user=request.user)
        messages.success(request, gettext("A new API token is issued; any token you had before no longer works."))
        return redirect("page-api-token")
    return render(request, "config/api_token.html", {"token": Token.objects.filter(user=request.user).first()})
