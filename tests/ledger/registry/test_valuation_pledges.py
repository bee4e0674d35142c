"""Valuation from an accounting result, pledges within the loan-to-value limit, release and enforcement,
transfers and retirement refused while pledged."""

from decimal import Decimal

import pytest

from accounting.models import AccountingRun
from ledger.models import Asset, Entry, Pledge
from ledger.registry import services as registry
from tests.ledger.registry.conftest import box, evidence, ledger_state, make_parcel, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def asset(roles):
    parcel = make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41))
    asset = registry.asset_register(parcel=parcel, rights_type="forest_land_ownership", holder=roles.holder,
                                    evidence=evidence(), county_code="510727")
    return asset


@pytest.fixture
def valued(roles, asset):
    """Confirmed, valued at 1000 t C (95%: 800-1200) and 80 CNY per t CO2e."""
    registry.asset_confirm(asset=asset, county_code="510727")
    run = make_run({asset.parcel: (1000.0, 800.0, 1200.0)})
    response = roles.bureau.post(f"/api/assets/{asset.code}/valuations/",
                                 {"run": run.id, "price_per_tCO2e": "80", "currency": "CNY"}, format="json")
    assert response.status_code == 201, response.json()
    return asset


def test_valuation_figures_at_a_co2e_price(roles, valued):
    # 1000 t C × 44/12 = 3666.666667 t CO2e; × 80 = 293333.33; lower bound 800 t C × 44/12 × 80 = 234666.67
    detail = roles.bank.get(f"/api/assets/{valued.code}/").json()
    valuation = detail["valuation"]
    assert valuation["stock_tC"] == "1000.000000"
    assert valuation["stock_tCO2e"] == "3666.666667"
    assert valuation["stock_ci95_tC"] == ["800.000000", "1200.000000"]
    assert valuation["price_per_tCO2e"] == {"amount": "80.0000", "currency": "CNY"}
    assert valuation["value"] == {"amount": "293333.33", "currency": "CNY"}
    assert valuation["value_ci95_low"] == {"amount": "234666.67", "currency": "CNY"}
    assert valuation["method_sha256"] == "cd" * 32 and valuation["input_raster_sha256"] == ["ab" * 32]
    entry = Entry.objects.for_asset(valued.code).last()
    assert entry.kind == "asset.value" and entry.payload["value_ci95_low"]["amount"] == "234666.67"


def test_valuation_at_the_runs_own_price_per_t_c(roles, asset):
    registry.asset_confirm(asset=asset, county_code="510727")
    run = make_run({asset.parcel: (1000.0, 800.0, 1200.0)}, price_per_t_c=Decimal("293.3333"), currency="CNY")
    response = roles.bureau.post(f"/api/assets/{asset.code}/valuations/", {"run": run.id}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["price_per_tC"] == {"amount": "293.3333", "currency": "CNY"}
    assert response.json()["value"] == {"amount": "293333.30", "currency": "CNY"}  # 1000 × 293.3333
    assert response.json()["value_ci95_low"] == {"amount": "234666.64", "currency": "CNY"}  # 800 × 293.3333


@pytest.mark.parametrize("case", ["unconfirmed", "failed_run", "other_parcel", "no_price"])
def test_valuation_refusals_change_nothing(roles, asset, case):
    if case != "unconfirmed":
        registry.asset_confirm(asset=asset, county_code="510727")
    parcel = asset.parcel if case != "other_parcel" else make_parcel("LQ-2", box(104.6, 32.4, 104.61, 32.41))
    run = make_run({parcel: (1000.0, 800.0, 1200.0)})
    if case == "failed_run":
        AccountingRun.objects.filter(id=run.id).update(status=AccountingRun.FAILED)
    body = {"run": run.id} if case == "no_price" else {"run": run.id, "price_per_tCO2e": "80"}
    before = ledger_state()
    response = roles.bureau.post(f"/api/assets/{asset.code}/valuations/", body, format="json")
    assert response.status_code == {"unconfirmed": 409}.get(case, 422), response.json()
    assert ledger_state() == before


def pledge(client, code, amount, **extra):
    return client.post(f"/api/assets/{code}/pledges/",
                       {"amount": amount, "currency": "CNY", "term_months": 36, **extra}, format="json")


def test_pledges_up_to_the_limit_of_the_lower_bound_then_409(roles, valued):
    # limit = 50% × 234666.67 = 117333.335 CNY
    first = pledge(roles.bank, valued.code, "100000.00")
    assert first.status_code == 201, first.json()
    assert first.json() | {"created_at": None} == {
        "id": first.json()["id"], "asset": valued.code, "pledgee": roles.bank_party.id,
        "amount": {"amount": "100000.00", "currency": "CNY"}, "term_months": 36, "ltv_limit_pct": "50.00",
        "status": "active", "created_at": None, "closed_at": None}
    assert pledge(roles.bank2, valued.code, "17333.33").status_code == 201  # total 117333.33 <= 117333.335
    before = ledger_state()
    over = pledge(roles.bank2, valued.code, "0.01")
    assert over.status_code == 409
    assert over.json()["limit"] == "117333.335" and over.json()["active_pledges_total"] == "117333.33"
    assert "above the limit 117333.335 CNY (50.00% of 234666.67 CNY" in over.json()["detail"]
    assert ledger_state() == before


def test_the_strictest_ltv_among_active_pledges_applies(roles, valued):
    assert pledge(roles.bank, valued.code, "40000", ltv_limit_pct="20").status_code == 201
    # 20% × 234666.67 = 46933.334: a second pledge of 10000 would make 50000 > 46933.334
    assert pledge(roles.bank2, valued.code, "10000", ltv_limit_pct="50").status_code == 409
    assert pledge(roles.bank2, valued.code, "6933.33", ltv_limit_pct="50").status_code == 201


@pytest.mark.parametrize(("body", "status"), [
    ({"amount": "10", "currency": "USD", "term_months": 12}, 422),
    ({"amount": "10", "currency": "CNY", "term_months": 0}, 422),
    ({"amount": "10", "currency": "CNY", "term_months": 601}, 422),  # the service's bound, on both doors
    ({"amount": "10", "currency": "CNY", "term_months": "twelve"}, 400),  # does not parse
    ({"amount": "0", "currency": "CNY", "term_months": 12}, 422),
    ({"amount": "0.001", "currency": "CNY", "term_months": 12}, 422),  # below the money quantum
    ({"amount": "10", "currency": "CNY", "term_months": 12, "ltv_limit_pct": "101"}, 422),
    # The loan-to-value limit is the registry's (PLEDGE_LTV_LIMIT_PCT, 50 here): a bank may ask for less, not more.
    ({"amount": "10", "currency": "CNY", "term_months": 12, "ltv_limit_pct": "50.01"}, 422),
])
def test_bad_pledges_change_nothing(roles, valued, body, status):
    before = ledger_state()
    response = roles.bank.post(f"/api/assets/{valued.code}/pledges/", body, format="json")
    assert response.status_code == status, response.json()
    assert ledger_state() == before


def test_an_unconfirmed_or_unvalued_asset_cannot_be_pledged(roles, asset):
    assert pledge(roles.bank, asset.code, "10").status_code == 409
    registry.asset_confirm(asset=asset, county_code="510727")
    response = pledge(roles.bank, asset.code, "10")
    assert response.status_code == 409 and "has no valuation" in response.json()["detail"]
    assert Pledge.objects.count() == 0


def test_transfer_refused_while_pledged_then_allowed_after_release(roles, valued):
    pledge_id = pledge(roles.bank, valued.code, "50000").json()["id"]
    before = ledger_state()
    refused = roles.exchange.post(f"/api/assets/{valued.code}/transfers/", {"to_holder": roles.buyer.id},
                                  format="json")
    assert refused.status_code == 409 and refused.json()["pledge_id"] == pledge_id
    assert f"while pledge {pledge_id} is active" in refused.json()["detail"]
    retire = roles.exchange.post(f"/api/assets/{valued.code}/retire/", {"beneficiary": "X", "reason": "offset"},
                                 format="json")
    assert retire.status_code == 409 and retire.json()["pledge_id"] == pledge_id
    assert ledger_state() == before
    released = roles.bank.post(f"/api/pledges/{pledge_id}/release/")
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert roles.bank.post(f"/api/pledges/{pledge_id}/release/").status_code == 409
    moved = roles.exchange.post(f"/api/assets/{valued.code}/transfers/",
                                {"to_holder": roles.buyer.id, "trade_ref": "T-1"}, format="json")
    assert moved.status_code == 201, moved.json()
    assert moved.json()["asset"]["holder"]["id"] == roles.buyer.id
    assert moved.json()["from_holder"] == roles.holder.id
    assert roles.exchange.post(f"/api/assets/{valued.code}/transfers/", {"to_holder": roles.buyer.id},
                               format="json").status_code == 422


def test_enforce_passes_the_asset_to_the_bank_or_its_nominee(roles, valued):
    first = pledge(roles.bank, valued.code, "50000").json()["id"]
    enforced = roles.bank.post(f"/api/pledges/{first}/enforce/", {"nominee": roles.buyer.id}, format="json")
    assert enforced.status_code == 200 and enforced.json()["status"] == "enforced"
    assert Asset.objects.get(code=valued.code).holder == roles.buyer
    second = pledge(roles.bank2, valued.code, "1000").json()["id"]
    roles.bank2.post(f"/api/pledges/{second}/enforce/", {}, format="json")
    assert Asset.objects.get(code=valued.code).holder == roles.bank2_party
    assert Entry.objects.for_asset(valued.code).last().payload == {"asset": valued.code, "pledge": second,
                                                                   "to_holder": roles.bank2_party.id}


def test_a_retired_asset_does_nothing_more(roles, valued):
    retired = roles.exchange.post(f"/api/assets/{valued.code}/retire/",
                                  {"beneficiary": "Chengdu Metro", "reason": "2026 offset claim"}, format="json")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert retired.json()["retirement"]["beneficiary"] == "Chengdu Metro"
    before = ledger_state()
    run = make_run({valued.parcel: (1.0, 1.0, 1.0)})
    attempts = [
        roles.exchange.post(f"/api/assets/{valued.code}/transfers/", {"to_holder": roles.buyer.id}, format="json"),
        roles.exchange.post(f"/api/assets/{valued.code}/retire/", {"beneficiary": "Y", "reason": "again"},
                            format="json"),
        pledge(roles.bank, valued.code, "1"),
        roles.bureau.post(f"/api/assets/{valued.code}/confirm/"),
        roles.bureau.post(f"/api/assets/{valued.code}/valuations/", {"run": run.id, "price_per_tCO2e": "1"},
                          format="json"),
    ]
    assert [a.status_code for a in attempts] == [409] * 5
    assert all(a.json()["asset_status"] == "retired" for a in attempts)
    assert ledger_state() == before
    # its land stays taken
    again = roles.bureau.post("/api/assets/", {"parcel": valued.parcel.id, "rights_type": "forest_land_use",
                                               "holder": roles.holder.id, "evidence": evidence()}, format="json")
    assert again.status_code == 409


def test_a_bank_lists_its_pledges_and_anyone_can_filter_them(roles, valued):
    # Lower 95 % bound 234,666.67 CNY at the default 50 % limit: up to 117,333.33 may be pledged in all.
    first = pledge(roles.bank, valued.code, "50000.00").json()
    second = pledge(roles.bank2, valued.code, "40000.00").json()
    assert roles.bank.post(f"/api/pledges/{first['id']}/release/").status_code == 200

    mine = roles.bank.get("/api/pledges/?pledgee=me").json()
    assert mine["count"] == 1
    assert [(p["id"], p["status"], p["amount"]) for p in mine["results"]] == [
        (first["id"], "released", {"amount": "50000.00", "currency": "CNY"})]
    active = roles.auditor.get(f"/api/pledges/?asset={valued.code}&status=active").json()["results"]
    assert [(p["id"], p["pledgee"]) for p in active] == [(second["id"], roles.bank2_party.id)]
    by_party = roles.exchange.get(f"/api/pledges/?pledgee={roles.bank2_party.id}&county=510727").json()
    assert [p["id"] for p in by_party["results"]] == [second["id"]]
    assert roles.bank.get("/api/pledges/?county=510704").json()["count"] == 0


@pytest.mark.parametrize(("query", "status"), [("pledgee=me", 403), ("status=lapsed", 400), ("county=51", 400),
                                                ("pledgee=bank-a", 400)])
def test_bad_pledge_queries(roles, query, status):
    response = roles.auditor.get(f"/api/pledges/?{query}")
    assert response.status_code == status, response.json()
    assert response["Content-Type"] == "application/problem+json"
