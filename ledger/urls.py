from django.urls import path

from ledger.anchoring import api as anchor_api
from ledger.bundles import api as bundle_api
from ledger.log import api
from ledger.registry import api as registry_api
from ledger.webhooks import api as webhook_api

urlpatterns = [
    path("ledger/checkpoint/", api.CheckpointLatestView.as_view(), name="ledger-checkpoint"),
    path("ledger/checkpoints/", api.CheckpointListView.as_view(), name="ledger-checkpoints"),
    path("ledger/keys/", api.KeyListView.as_view(), name="ledger-keys"),
    path("ledger/entries/", api.EntryListView.as_view(), name="ledger-entries"),
    path("ledger/entries/<int:seq>/", api.EntryDetailView.as_view(), name="ledger-entry"),
    path("ledger/entries/<int:seq>/proof/", api.EntryProofView.as_view(), name="ledger-entry-proof"),
    path("ledger/consistency/", api.ConsistencyProofView.as_view(), name="ledger-consistency"),
]


urlpatterns += [
    path("parties/", registry_api.PartyListView.as_view(), name="party-list"),
    path("parties/<int:party_id>/", registry_api.PartyDetailView.as_view(), name="party-detail"),
    path("assets/", registry_api.AssetListView.as_view(), name="asset-list"),
    path("assets/<str:code>/", registry_api.AssetDetailView.as_view(), name="asset-detail"),
    path("assets/<str:code>/confirm/", registry_api.AssetConfirmView.as_view(), name="asset-confirm"),
    path("assets/<str:code>/valuations/", registry_api.AssetValuationView.as_view(), name="asset-valuations"),
    path("assets/<str:code>/pledges/", registry_api.AssetPledgeView.as_view(), name="asset-pledges"),
    path("assets/<str:code>/transfers/", registry_api.AssetTransferView.as_view(), name="asset-transfers"),
    path("assets/<str:code>/retire/", registry_api.AssetRetireView.as_view(), name="asset-retire"),
    path("pledges/", registry_api.PledgeListView.as_view(), name="pledge-list"),
    path("pledges/<int:pledge_id>/release/", registry_api.PledgeReleaseView.as_view(), name="pledge-release"),
    path("pledges/<int:pledge_id>/enforce/", registry_api.PledgeEnforceView.as_view(), name="pledge-enforce"),
    path("webhooks/", webhook_api.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:subscription_id>/deliveries/", webhook_api.WebhookDeliveryListView.as_view(),
         name="webhook-deliveries"),
]


urlpatterns += [
    path("ledger/anchors/", anchor_api.AnchorListView.as_view(), name="ledger-anchors"),
]


urlpatterns += [
    path("assets/<str:code>/bundle/", bundle_api.BundleView.as_view(), name="asset-bundle"),
    path("assets/<str:code>/certificate.pdf", bundle_api.CertificateView.as_view(), name="asset-certificate"),
    path("verify/", bundle_api.VerifyView.as_view(), name="bundle-verify"),
]
