from django.urls import path

from geo import pages

urlpatterns = [
    path("bureau/upload/", pages.upload_page, name="page-upload"),
    path("bureau/upload/raster/", pages.raster_upload, name="page-raster-upload"),
    path("bureau/upload/parcels/", pages.parcel_upload, name="page-parcel-upload"),
]
