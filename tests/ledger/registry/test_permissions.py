"""Each role may do only its own part; every forbidden path is 403 (404 where existence would leak) and changes
nothing: no new entry, no changed projection row, no idempotency record."""

import pytest

from ledger.models import IdempotencyRecord, WebhookSubscription
from ledger.registry import services as registry
from tests.ledger.registry.conftest import box, evidence, ledger_state, make_parcel, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(roles, api_user):
    asset = registry.asset_register(parcel=make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)),
                                    rights_type="forest_land_ownership", holder=roles.holder, evidence=evidence(),
                                    county_code="510727")
    registry.asset_confirm(asset=asset, county_code="510727")
    run = make_run({asset.parcel: (1000.0, 800.0, 1200.0)})
    registry.asset_value(asset=asset, run=run, county_code="510727", price_per_t_co2e=80)
    pledge = registry.pledge_create(asset=asset, pledgee=roles.bank_party, amount=1000, currency="CNY",
                                    term_months=12)
    fresh = registry.asset_register(parcel=make_parcel("LQ-2", box(104.60, 32.40, 104.61, 32.41)),
                                    rights_type="forest_land_use", holder=roles.holder, evidence=evidence(),
                                    county_code="510727")
    free_parcel = make_parcel("LQ-3", box(104.70, 32.40, 104.71, 32.41))
    _, roles.partyless_bank = api_user("bank", username="bank-without-party")
    return {"asset": asset.code, "fresh": fresh.code, "pledge": pledge.id, "run": run.id, "parcel": free_parcel.id,
            "holder": roles.holder.id, "buyer": roles.buyer.id}


def _calls(w):
    register = ("/api/assets/", {"parcel": w["parcel"], "rights_type": "forest_land_use", "holder": w["holder"],
                                 "evidence": evidence()})
    return {
        "register": register,
        "confirm": (f"/api/assets/{w['fresh']}/confirm/", {}),
        "value": (f"/api/assets/{w['asset']}/valuations/", {"run": w["run"], "price_per_tCO2e": "90"}),
        "pledge": (f"/api/assets/{w['asset']}/pledges/", {"amount": "10", "currency": "CNY", "term_months": 12}),
        "release": (f"/api/pledges/{w['pledge']}/release/", {}),
        "enforce": (f"/api/pledges/{w['pledge']}/enforce/", {}),
        "transfer": (f"/api/assets/{w['fresh']}/transfers/", {"to_holder": w["buyer"]}),
        "retire": (f"/api/assets/{w['fresh']}/retire/", {"beneficiary": "X", "reason": "Y"}),
        "party": ("/api/parties/", {"kind": "company", "name": "X", "uscc": "91110000802100433B"}),
        "webhook": ("/api/webhooks/", {"url": "http://127.0.0.1:9/hook", "event_kinds": ["*"]}),
    }


FORBIDDEN = [
    ("auditor", "register"), ("auditor", "confirm"), ("auditor", "value"), ("auditor", "pledge"),
    ("auditor", "release"), ("auditor", "enforce"), ("auditor", "transfer"), ("auditor", "retire"),
    ("auditor", "party"), ("auditor", "webhook"),
    ("other_bureau", "register"), ("other_bureau", "confirm"), ("other_bureau", "value"),
    ("bureau", "pledge"), ("bureau", "release"), ("bureau", "transfer"), ("bureau", "retire"), ("bureau", "webhook"),
    ("bank", "register"), ("bank", "confirm"), ("bank", "value"), ("bank", "transfer"), ("bank", "retire"),
    ("bank", "party"),
    ("bank2", "release"), ("bank2", "enforce"), ("partyless_bank", "pledge"),
    ("exchange", "register"), ("exchange", "confirm"), ("exchange", "value"), ("exchange", "pledge"),
    ("exchange", "release"), ("exchange", "enforce"), ("exchange", "party"),
]


@pytest.mark.parametrize(("who", "what"), FORBIDDEN, ids=[f"{w}-{a}" for w, a in FORBIDDEN])
def test_forbidden_paths_are_403_and_change_nothing(roles, world, who, what):
    url, body = _calls(world)[what]
    before = ledger_state()
    subscriptions = WebhookSubscription.objects.count()
    response = getattr(roles, who).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"{who}-{what}")
    assert response.status_code == 403, (response.status_code, response.json())
    assert response["Content-Type"] == "application/problem+json"
    assert ledger_state() == before
    assert WebhookSubscription.objects.count() == subscriptions
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize("who", ["bureau", "bank", "exchange", "auditor"])
def test_every_role_reads_assets_and_parties(roles, world, who):
    client = getattr(roles, who)
    assert client.get(f"/api/assets/{world['asset']}/").json()["active_pledges"][0]["id"] == world["pledge"]
    assert client.get("/api/assets/").json()["count"] == 2
    assert client.get("/api/parties/").status_code == 200


def test_anonymous_reads_nothing(client, world):
    assert client.get("/api/assets/").status_code == 401
    assert client.post("/api/parties/", {}, content_type="application/json").status_code == 401


def test_another_users_webhook_log_is_404_not_403(roles, world):
    mine = roles.bank.post("/api/webhooks/", {"url": "http://127.0.0.1:9/hook", "event_kinds": ["*"]},
                           format="json").json()["id"]
    assert roles.bank.get(f"/api/webhooks/{mine}/deliveries/").status_code == 200
    assert roles.bank2.get(f"/api/webhooks/{mine}/deliveries/").status_code == 404
    assert roles.bank2.get("/api/webhooks/999999/deliveries/").status_code == 404
    assert roles.bank2.get("/api/webhooks/").json()["results"] == []
    assert roles.auditor.get(f"/api/webhooks/{mine}/deliveries/").status_code == 403  # a role question, not a leak


def test_the_pledgee_can_release_what_another_bank_cannot(roles, world):
    assert roles.bank2.post(f"/api/pledges/{world['pledge']}/release/").status_code == 403
    assert roles.bank.post(f"/api/pledges/{world['pledge']}/release/").status_code == 200
