from django.urls import path

from accounting.api import (
    MethodKindListView,
    MethodVersionDetailView,
    MethodVersionListView,
    RunDetailView,
    RunListView,
    RunResultsView,
)

urlpatterns = [
    path("methods/", MethodVersionListView.as_view(), name="method-list"),
    path("methods/kinds/", MethodKindListView.as_view(), name="method-kinds"),
    path("methods/<int:method_id>/", MethodVersionDetailView.as_view(), name="method-detail"),
    path("runs/", RunListView.as_view(), name="run-list"),
    path("runs/<int:run_id>/", RunDetailView.as_view(), name="run-detail"),
    path("runs/<int:run_id>/results/", RunResultsView.as_view(), name="run-results"),
]
