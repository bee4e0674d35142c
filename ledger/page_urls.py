from django.urls import path

from ledger import pages

urlpatterns = [
    path("assets/", pages.asset_search, name="page-assets"),
    path("assets/register/", pages.asset_register, name="page-asset-register"),
    path("assets/<str:code>/", pages.asset_page, name="page-asset"),
    path("assets/<str:code>/confirm/", pages.asset_confirm, name="page-asset-confirm"),
    path("assets/<str:code>/value/", pages.asset_value, name="page-asset-value"),
    path("assets/<str:code>/pledge/", pages.pledge_create, name="page-pledge-create"),
    path("assets/<str:code>/transfer/", pages.asset_transfer, name="page-asset-transfer"),
    path("assets/<str:code>/retire/", pages.asset_retire, name="page-asset-retire"),
    path("pledges/", pages.pledge_book, name="page-pledges"),
    path("pledges/<int:pledge_id>/release/", pages.pledge_release, name="page-pledge-release"),
    path("verify/", pages.verify_page, name="page-verify"),
    path("ledger/", pages.ledger_page, name="page-ledger"),
]
