"""Only the ledger's routes (and the schema), so these tests do not depend on other apps' URL modules."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("ledger.urls")),
]
