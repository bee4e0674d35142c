from django.urls import path

from ledger.bundles import pages as bundle_pages
from ledger.log import pages as log_pages
from ledger.registry import pages as registry_pages

urlpatterns = [
    path("assets/", registry_pages.asset_search, name="page-assets"),
    path("assets/register/", registry_pages.asset_register, name="page-asset-register"),
    path("assets/<str:code>/", registry_pages.asset_page, name="page-asset"),
    path("assets/<str:code>/confirm/", registry_pages.asset_confirm, name="page-asset-confirm"),
    path("assets/<str:code>/value/", registry_pages.asset_value, name="page-asset-value"),
    path("assets/<str:code>/pledge/", registry_pages.pledge_create, name="page-pledge-create"),
    path("assets/<str:code>/transfer/", registry_pages.asset_transfer, name="page-asset-transfer"),
    path("assets/<str:code>/retire/", registry_pages.asset_retire, name="page-asset-retire"),
    path("pledges/", registry_pages.pledge_book, name="page-pledges"),
    path("pledges/<int:pledge_id>/release/", registry_pages.pledge_release, name="page-pledge-release"),
    path("verify/", bundle_pages.verify_page, name="page-verify"),
    path("ledger/", log_pages.ledger_page, name="page-ledger"),
]
