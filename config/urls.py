from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz
from config.views import SignInView, SignOutView, WhoAmIView, api_token_page, home

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/whoami/", WhoAmIView.as_view(), name="whoami"),
    path("api/", include("geo.urls")),
    path("api/", include("accounting.urls")),
    path("api/", include("ledger.urls")),
    path("admin/", admin.site.urls),
    # Web pages (config/pages.py; each app's page_urls.py), in English or Chinese by the browser or the switch.
    path("", home, name="home"),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("accounts/token/", api_token_page, name="page-api-token"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("geo.page_urls")),
    path("", include("accounting.page_urls")),
    path("", include("ledger.page_urls")),
]

handler400 = "config.problems.bad_request"
handler403 = "config.problems.forbidden"
handler404 = "config.problems.not_found"
handler500 = "config.problems.server_error"
