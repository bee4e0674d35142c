"""Queries per request are bounded: the list and detail reads that banks and exchanges make most take a fixed number
of queries, however many assets, pledges, entries and checkpoints there are (no N+1 can creep in unnoticed)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.log.services import checkpoint_sign_latest
from ledger.models import Asset
from ledger.registry import services as registry
from tests.ledger.registry.conftest import COUNTY, box, evidence, make_parcel, make_run

pytestmark = pytest.mark.django_db
ASSETS = 50
# Each request's own queries plus what every API request costs: the token, the user's roles, and (on PostgreSQL)
# the wait until what it read is on disk.
LIST_MAX, DETAIL_MAX, BUNDLE_MAX = 8, 10, 22


@pytest.fixture
def market(roles):
    """ASSETS confirmed and valued assets, each pledged to bank A; the first also released and pledged again to bank
    B, transferred history aside; a checkpoint after every few changes (more than a bundle's 32 consistency
    proofs)."""
    parcels = [make_parcel(f"QB-{i:03d}", box(104.0 + i * 0.02, 32.40, 104.01 + i * 0.02, 32.41))
               for i in range(ASSETS)]
    run = make_run({p: (1000.0, 800.0, 1200.0) for p in parcels})
    assets = []
    for index, parcel in enumerate(parcels):
        asset = registry.asset_register(parcel=parcel, rights_type="forest_land_use", holder=roles.holder,
                                        evidence=evidence(), county_code=COUNTY)
        registry.asset_confirm(asset=asset, county_code=COUNTY)
        registry.asset_value(asset=asset, run=run, county_code=COUNTY, price_per_t_co2e=Decimal("80"))
        registry.pledge_create(asset=asset, pledgee=roles.bank_party, amount=Decimal("1000"), currency="CNY",
                               term_months=12)
        assets.append(asset)
        if index % 2:
            checkpoint_sign_latest(force=True)
    first = assets[0]
    for _ in range(5):
        pledge = registry.pledge_create(asset=first, pledgee=roles.bank2_party, amount=Decimal("500"),
                                        currency="CNY", term_months=6)
        registry.pledge_release(pledge=pledge, released_by=roles.bank2_party)
    checkpoint_sign_latest(force=True)
    return type("Market", (), {"assets": assets, "first": first, "roles": roles})


def queries(client, path, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **headers)
    assert response.status_code in (200, 304), (path, response.content[:300])
    return len(captured)


@pytest.mark.parametrize(("path", "at_most"), [
    pytest.param("/api/assets/?limit=50", LIST_MAX, id="assets-list-of-50"),
    pytest.param("/api/assets/?limit=50&status=pledged", LIST_MAX, id="pledged-assets"),
    pytest.param("/api/pledges/?limit=50", LIST_MAX, id="pledges-list"),
    pytest.param("/api/pledges/?limit=50&pledgee=me", LIST_MAX + 1, id="own-pledges"),
    pytest.param("/api/ledger/entries/?limit=100", LIST_MAX, id="entries-list"),
    pytest.param("/api/parties/", LIST_MAX, id="parties-list"),
    pytest.param("/api/assets/{first}/", DETAIL_MAX, id="asset-detail-with-history"),
    pytest.param("/api/assets/{first}/bundle/", BUNDLE_MAX, id="bundle"),
    pytest.param("/api/ledger/entries/3/proof/", DETAIL_MAX, id="inclusion-proof"),
    pytest.param("/api/ledger/consistency/?first=3&second=40", DETAIL_MAX, id="consistency-proof"),
    pytest.param("/api/ledger/checkpoint/", DETAIL_MAX, id="latest-checkpoint"),
])
def test_reads_take_a_bounded_number_of_queries(market, django_assert_max_num_queries, path, at_most):
    path = path.format(first=market.first.code)
    with django_assert_max_num_queries(at_most):
        response = market.roles.bank.get(path)
    assert response.status_code == 200, response.content[:300]


def test_the_number_does_not_grow_with_the_rows(market):
    """The same reads over a page of 5 and of 50, and an asset with 4 entries and one with 14: the same queries."""
    bank, first, plain = market.roles.bank, market.first.code, market.assets[-1].code
    assert queries(bank, "/api/assets/?limit=5") == queries(bank, "/api/assets/?limit=50")
    assert queries(bank, "/api/pledges/?limit=5") == queries(bank, "/api/pledges/?limit=50")
    assert queries(bank, "/api/ledger/entries/?limit=5") == queries(bank, "/api/ledger/entries/?limit=100")
    assert queries(bank, f"/api/assets/{plain}/") == queries(bank, f"/api/assets/{first}/")
    assert queries(bank, f"/api/assets/{plain}/bundle/") == queries(bank, f"/api/assets/{first}/bundle/")
    assert Asset.objects.get(code=first).pledges.count() == 6


def test_a_conditional_bundle_read_is_cheaper_than_building_it(market):
    bank, code = market.roles.bank, market.first.code
    built = bank.get(f"/api/assets/{code}/bundle/")
    assert queries(bank, f"/api/assets/{code}/bundle/", HTTP_IF_NONE_MATCH=built["ETag"]) <= 10
    assert queries(bank, f"/api/assets/{code}/", HTTP_IF_NONE_MATCH=bank.get(f"/api/assets/{code}/")["ETag"]) <= 5


@pytest.mark.postgres
def test_an_assets_entries_and_etag_are_read_through_the_asset_index():
    """`for_asset` (the asset's history, its ETag, its bundle) compares the payload's asset as text, which the
    expression index on (payload ->> 'asset', seq) serves; a JSON comparison would scan the whole ledger. A bundle
    finds its parties' entries through the same index, among the entries that name no asset."""
    from ledger.log.models import Entry
    from ledger.log.services import entry_append

    for n in range(20):
        entry_append(kind="test.note", payload={"asset": f"A-{n % 4}", "n": n})
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert "ledger_entry_asset_idx" in Entry.objects.for_asset("A-1").explain()
    latest = Entry.objects.for_asset("A-1").order_by("-seq").values_list("seq", flat=True)[:1]
    assert "ledger_entry_asset_idx" in latest.explain()
    assert [e.seq for e in Entry.objects.for_asset("A-1")] == [1, 5, 9, 13, 17]

    from ledger.bundles.services import _party_entries

    party = entry_append(kind="party.create", payload={"party": 7, "kind": "household", "name": "x", "uscc": None})
    with CaptureQueriesContext(connection) as captured:
        assert [e.seq for e in _party_entries({7})] == [party.seq]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + captured.captured_queries[0]["sql"])
        assert "ledger_entry_asset_idx" in " ".join(row[0] for row in cursor.fetchall())
