from django.urls import path

from ledger import api

urlpatterns = [
    path("ledger/checkpoint/", api.CheckpointLatestView.as_view(), name="ledger-checkpoint"),
    path("ledger/checkpoints/", api.CheckpointListView.as_view(), name="ledger-checkpoints"),
    path("ledger/keys/", api.KeyListView.as_view(), name="ledger-keys"),
    path("ledger/entries/", api.EntryListView.as_view(), name="ledger-entries"),
    path("ledger/entries/<int:seq>/", api.EntryDetailView.as_view(), name="ledger-entry"),
    path("ledger/entries/<int:seq>/proof/", api.EntryProofView.as_view(), name="ledger-entry-proof"),
    path("ledger/consistency/", api.ConsistencyProofView.as_view(), name="ledger-consistency"),
]
