"""Idempotency-Key: the same key and body replay the first response and change nothing; another body is 422."""

import pytest

from ledger.models import Entry, IdempotencyRecord, Party
from ledger.registry import services as registry
from tests.ledger.registry.conftest import box, evidence, ledger_state, make_parcel, make_run

pytestmark = pytest.mark.django_db

BODY = {"kind": "company", "name": "Tencent", "uscc": "9144030071526726XG"}


def test_same_key_same_body_replays_the_first_response(api_user):
    _, bureau = api_user("bureau")
    first = bureau.post("/api/parties/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    before = ledger_state()
    again = bureau.post("/api/parties/", dict(reversed(BODY.items())), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert ledger_state() == before and Party.objects.count() == 1


def test_same_key_other_body_or_path_is_422_and_changes_nothing(api_user):
    _, bureau = api_user("bureau")
    bureau.post("/api/parties/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    before = ledger_state()
    other = bureau.post("/api/parties/", {**BODY, "name": "Tencent 2"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422 and other.json()["idempotency_key"] == "k-1"
    assert "was used for another request" in other.json()["detail"]
    assert ledger_state() == before


def test_a_refused_request_records_nothing_so_the_key_can_be_used_again(api_user):
    _, bureau = api_user("bureau")
    bad = bureau.post("/api/parties/", {**BODY, "uscc": "9144030071526726X0"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="k-2")
    assert bad.status_code == 422 and IdempotencyRecord.objects.count() == 0
    good = bureau.post("/api/parties/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert good.status_code == 201 and Entry.objects.count() == 1


def test_keys_are_per_user(api_user):
    _, bureau = api_user("bureau")
    _, bank = api_user("bank")
    bureau.post("/api/parties/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = bank.post("/api/parties/", {"kind": "bank", "name": "Bank A", "uscc": "914403001922038216"},
                         format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Party.objects.count() == 2


def test_pledge_retried_with_its_key_is_one_pledge(roles):
    asset = registry.asset_register(parcel=make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)),
                                    rights_type="forest_land_use", holder=roles.holder, evidence=evidence(),
                                    county_code="510727")
    registry.asset_confirm(asset=asset, county_code="510727")
    registry.asset_value(asset=asset, run=make_run({asset.parcel: (1000.0, 800.0, 1200.0)}),
                         county_code="510727", price_per_t_co2e=80)
    body = {"amount": "60000", "currency": "CNY", "term_months": 12}
    first = roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY="p")
    second = roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY="p")
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert asset.pledges.count() == 1
    # without the key, the same body is a second pledge, and 120000 > 117333.335 is refused
    assert roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json").status_code == 409
