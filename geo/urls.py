from django.urls import path

from geo.api import ParcelDetailView, ParcelListView, RasterDetailView, RasterListView

urlpatterns = [
    path("rasters/", RasterListView.as_view(), name="raster-list"),
    path("rasters/<int:raster_id>/", RasterDetailView.as_view(), name="raster-detail"),
    path("parcels/", ParcelListView.as_view(), name="parcel-list"),
    path("parcels/<int:parcel_id>/", ParcelDetailView.as_view(), name="parcel-detail"),
]
