from django.urls import path

from accounting import pages

urlpatterns = [
    path("county/<str:county_code>/", pages.county_overview, name="page-county"),
    path("runs/", pages.runs_page, name="page-runs"),
    path("runs/start/", pages.run_start, name="page-run-start"),
    path("runs/methods/", pages.method_publish, name="page-method-publish"),
    path("runs/<int:run_id>/", pages.run_page, name="page-run"),
]
