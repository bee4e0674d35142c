"""GET requests never write (DESIGN.md): every GET operation of the OpenAPI schema, as each role and signed out,
leaves every table's row count as it was, checkpoints and entries included. Among them, the bundle and certificate
of an asset that no signed checkpoint covers yet answer 409 `checkpoint-due` rather than sign one."""

from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from geo.models import Parcel
from ledger.log.models import Checkpoint, Entry
from ledger.log.services import checkpoint_sign_latest
from ledger.registry import services as registry
from ledger.webhooks.services import webhook_subscribe
from tests.foundation.contract import project_contract
from tests.pages.conftest import COUNTY, county, ledger_key_file, page_user  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
ROLES = ("bureau", "bank", "exchange", "auditor")


def table_counts() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


@pytest.fixture
def world(county, api_user):  # noqa: F811 (the pages' fixture)
    """The pages' county (raster, parcels, method, run, a valued asset) with a pledge, a signed checkpoint that
    covers it, then a second asset whose registration no checkpoint covers yet, and a webhook subscription."""
    clients = {role: api_user(role)[1] for role in ROLES}
    pledge = registry.pledge_create(asset=county.asset, pledgee=county.bank, amount=Decimal("1000"), currency="CNY",
                                    term_months=12)
    checkpoint_sign_latest(force=True)
    fresh = registry.asset_register(parcel=Parcel.objects.get(code="G-1"), rights_type="grassland_contract",
                                    holder=county.holder, evidence=[], county_code=COUNTY)
    subscription = webhook_subscribe(owner=county.bank_user, url="http://127.0.0.1:9/hook", event_kinds=["*"])
    values = {"code": county.asset.code, "party_id": county.holder.id, "seq": 0, "pledge_id": pledge.id,
              "method_id": county.run.method_version_id, "parcel_id": county.asset.parcel_id,
              "raster_id": county.run.raster_id, "run_id": county.run.id, "subscription_id": subscription.id}
    return type("World", (), {"clients": clients, "values": values, "fresh": fresh})


def get_paths(world) -> list[str]:
    """One request path per GET operation of the schema, with real ids; the bundle and certificate also for the
    asset no checkpoint covers, and the proofs and lists with their parameters."""
    size = Entry.objects.count()
    extra = {"/api/ledger/consistency/": "?first=1&second={size}", "/api/ledger/entries/{seq}/proof/": "?tree_size=1",
             "/api/ledger/checkpoints/": "?size={checkpoint}", "/api/ledger/entries/": "?from=0&to=5"}
    paths = []
    for template, item in project_contract().document["paths"].items():
        if "get" not in item or template in ("/api/schema/", "/api/docs/"):
            continue
        query = extra.get(template, "").format(size=size, checkpoint=Checkpoint.objects.latest("tree_size").tree_size)
        paths.append(template.format(**world.values) + query)
        if template in ("/api/ledger/entries/{seq}/proof/", "/api/ledger/checkpoints/", "/api/ledger/entries/"):
            paths.append(template.format(**world.values))  # and without its parameters
        if "{code}" in template:
            paths.append(template.format(**{**world.values, "code": world.fresh.code}))
    return paths


def test_no_get_operation_changes_any_table_as_any_role(world):
    paths = get_paths(world)
    before = table_counts()
    seen, statuses = set(), {}
    for who, client in [*world.clients.items(), ("anonymous", APIClient())]:
        for path in paths:
            if path == "/api/webhooks/" and who in ("bureau", "auditor"):
                continue  # its 403 for these roles is not in the schema yet (the webhooks API's to document)
            response = client.get(path)
            statuses[(who, path)] = response.status_code
            seen.add(path.split("?")[0])
            assert response.status_code < 500, (who, path, response.content[:300])
            after = table_counts()
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert not changed, f"GET {path} as {who} changed {changed}"
    operations = [t for t, item in project_contract().document["paths"].items()
                  if "get" in item and t not in ("/api/schema/", "/api/docs/")]
    assert len(operations) >= 28 and all(any(p.startswith(t.split("{")[0]) for p in seen) for t in operations)
    # what answered: the covered asset's bundle, the uncovered one's checkpoint-due, nothing signed by a read
    code, fresh = world.values["code"], world.fresh.code
    assert statuses[("bank", f"/api/assets/{code}/bundle/")] == 200
    assert statuses[("auditor", f"/api/assets/{fresh}/bundle/")] == 409
    assert statuses[("exchange", f"/api/assets/{fresh}/certificate.pdf")] == 409
    assert statuses[("anonymous", "/api/ledger/checkpoint/")] == 200
    assert statuses[("anonymous", f"/api/assets/{code}/")] == 401
