"""Preconditions on the writes that change an asset: If-Match with the asset's ETag (every such write) and
`expected_holder` (transfers), refused with 412 when they no longer hold, checked under the asset's lock; and the
asset's ETag and conditional GET."""

import pytest

from ledger.models import Entry
from ledger.registry import services as registry
from ledger.registry.errors import PreconditionFailedError
from tests.ledger.registry.conftest import COUNTY, box, evidence, ledger_state, make_parcel, make_run
from tests.ledger.registry.test_end_to_end import _concurrently

pytestmark = pytest.mark.django_db
STALE = '"a-nothing-0"'


def valued_asset(roles, code="PC-1", lon=104.50):
    asset = registry.asset_register(parcel=make_parcel(code, box(lon, 32.40, lon + 0.01, 32.41)),
                                    rights_type="forest_land_ownership", holder=roles.holder, evidence=evidence(),
                                    county_code=COUNTY)
    registry.asset_confirm(asset=asset, county_code=COUNTY)
    registry.asset_value(asset=asset, run=make_run({asset.parcel: (1000.0, 800.0, 1200.0)}), county_code=COUNTY,
                         price_per_t_co2e=80)
    asset.refresh_from_db()
    return asset


def last_seq(code: str) -> int:
    return Entry.objects.for_asset(code).last().seq


def etag_of(client, code: str) -> str:
    response = client.get(f"/api/assets/{code}/")
    assert response.status_code == 200
    return response["ETag"]


def test_the_etag_names_the_last_entry_and_if_none_match_answers_304(roles):
    asset = valued_asset(roles)
    response = roles.bank.get(f"/api/assets/{asset.code}/")
    assert response["ETag"] == f'"a-{asset.code}-{last_seq(asset.code)}"'
    assert response["Cache-Control"] == "private, no-cache"
    assert response.json()["history"][-1]["seq"] == last_seq(asset.code)

    again = roles.auditor.get(f"/api/assets/{asset.code}/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == response["ETag"]
    assert roles.auditor.head(f"/api/assets/{asset.code}/", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    weak = roles.auditor.get(f"/api/assets/{asset.code}/", HTTP_IF_NONE_MATCH="W/" + response["ETag"])
    assert weak.status_code == 304  # If-None-Match compares weakly

    pledge = roles.bank.post(f"/api/assets/{asset.code}/pledges/", {"amount": "1000", "currency": "CNY",
                                                                   "term_months": 12}, format="json")
    assert pledge.status_code == 201
    changed = roles.auditor.get(f"/api/assets/{asset.code}/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert changed.status_code == 200 and changed["ETag"] == f'"a-{asset.code}-{last_seq(asset.code)}"'
    assert changed["ETag"] != response["ETag"]


def test_of_two_exchanges_trading_one_asset_from_the_same_state_only_the_first_settles(roles, api_user):
    asset = valued_asset(roles)
    exchange2_user, exchange2 = api_user("exchange", username="exchange-2")
    registry.party_create(kind="exchange", name="Exchange 2", uscc="91310000MA1FL0XQ5K", user=exchange2_user)
    other_buyer = registry.party_create(kind="household", name="Li household")
    etag = etag_of(roles.exchange, asset.code)
    assert etag == etag_of(exchange2, asset.code)

    first = roles.exchange.post(f"/api/assets/{asset.code}/transfers/", {"to_holder": roles.buyer.id},
                                format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 201, first.json()
    before = ledger_state()
    second = exchange2.post(f"/api/assets/{asset.code}/transfers/", {"to_holder": other_buyer.id}, format="json",
                            HTTP_IF_MATCH=etag)
    assert second.status_code == 412
    problem = second.json()
    assert problem["type"] == "/problems/precondition-failed"
    assert problem["etag"] == f'"a-{asset.code}-{last_seq(asset.code)}"' == etag_of(roles.exchange, asset.code)
    assert problem["holder"] == roles.buyer.id and problem["if_match"] == [etag]
    assert etag in problem["detail"] and problem["etag"] in problem["detail"]
    assert ledger_state() == before  # refused: nothing written


def test_expected_holder_refuses_a_transfer_from_someone_else(roles):
    asset = valued_asset(roles)
    before = ledger_state()
    wrong = roles.exchange.post(f"/api/assets/{asset.code}/transfers/",
                                {"to_holder": roles.buyer.id, "expected_holder": roles.buyer.id}, format="json")
    assert wrong.status_code == 412
    assert wrong.json()["holder"] == roles.holder.id and wrong.json()["expected_holder"] == roles.buyer.id
    assert f"held by party {roles.holder.id}, not party {roles.buyer.id}" in wrong.json()["detail"]
    assert ledger_state() == before
    right = roles.exchange.post(f"/api/assets/{asset.code}/transfers/",
                                {"to_holder": roles.buyer.id, "expected_holder": roles.holder.id}, format="json")
    assert right.status_code == 201 and right.json()["to_holder"] == roles.buyer.id


def _pledged(roles, asset):
    return registry.pledge_create(asset=asset, pledgee=roles.bank_party, amount=1000, currency="CNY", term_months=12)


# Each write that changes an asset: (what it needs, the client, the path, the body, the status when it goes through).
WRITES = {
    "confirm": (lambda roles, asset: None, "bureau", "/api/assets/{code}/confirm/", None, 200),
    "value": (None, "bureau", "/api/assets/{code}/valuations/", {"run": "{run}", "price_per_tCO2e": "85",
                                                                  "currency": "CNY"}, 201),
    "pledge": (None, "bank", "/api/assets/{code}/pledges/", {"amount": "1000", "currency": "CNY", "term_months": 12},
               201),
    "transfer": (None, "exchange", "/api/assets/{code}/transfers/", {"to_holder": "{buyer}"}, 201),
    "retire": (None, "exchange", "/api/assets/{code}/retire/", {"beneficiary": "B", "reason": "R"}, 200),
    "release": (_pledged, "bank", "/api/pledges/{pledge}/release/", None, 200),
    "enforce": (_pledged, "bank", "/api/pledges/{pledge}/enforce/", {}, 200),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_asset_write_takes_if_match(roles, write):
    prepare, who, path, body, ok = WRITES[write]
    if write == "confirm":
        asset = registry.asset_register(parcel=make_parcel("PC-1", box(104.50, 32.40, 104.51, 32.41)),
                                        rights_type="forest_land_use", holder=roles.holder, evidence=[],
                                        county_code=COUNTY)
        pledge = None
    else:
        asset = valued_asset(roles)
        pledge = prepare(roles, asset) if prepare else None
    values = {"code": asset.code, "pledge": pledge.id if pledge else None, "buyer": roles.buyer.id,
              "run": make_run({asset.parcel: (900.0, 700.0, 1100.0)}).id if write == "value" else None}
    url = path.format(**values)
    data = None if body is None else {k: (int(v.format(**values)) if isinstance(v, str) and v.startswith("{")
                                          else v) for k, v in body.items()}
    client = getattr(roles, who)
    before = ledger_state()
    refused = client.post(url, data, format="json", HTTP_IF_MATCH=STALE)
    assert refused.status_code == 412, refused.json()
    assert refused.json()["etag"] == etag_of(client, asset.code)
    assert ledger_state() == before
    done = client.post(url, data, format="json", HTTP_IF_MATCH=etag_of(client, asset.code))
    assert done.status_code == ok, done.json()


def test_if_match_star_matches_a_weak_or_unquoted_tag_matches_nothing(roles):
    asset = valued_asset(roles)
    etag = etag_of(roles.bank, asset.code)
    body = {"amount": "1000", "currency": "CNY", "term_months": 12}
    weak = roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json", HTTP_IF_MATCH=f"W/{etag}")
    assert weak.status_code == 412  # If-Match compares strongly (RFC 9110 13.1.1)
    bare = roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json", HTTP_IF_MATCH=etag.strip('"'))
    assert bare.status_code == 412 and f"not {etag.strip(chr(34))}" in bare.json()["detail"]
    listed = roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json",
                             HTTP_IF_MATCH=f'{STALE}, {etag}')
    assert listed.status_code == 201
    assert roles.bank.post(f"/api/assets/{asset.code}/pledges/", body, format="json",
                           HTTP_IF_MATCH="*").status_code == 201


def test_a_precondition_failure_is_told_in_chinese(roles):
    asset = valued_asset(roles)
    response = roles.exchange.post(f"/api/assets/{asset.code}/transfers/", {"to_holder": roles.buyer.id},
                                   format="json", HTTP_IF_MATCH=STALE, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 412
    assert response.json()["title"] == "前提条件不成立"
    assert "在您读取之后已发生变更" in response.json()["detail"]


def test_the_service_holds_the_same_rule_without_http(roles):
    asset = valued_asset(roles)
    with pytest.raises(PreconditionFailedError) as refused:
        registry.asset_transfer(asset=asset, to_holder=roles.buyer, if_match=[STALE])
    assert refused.value.extensions["etag"] == registry.asset_etag(asset_code=asset.code)
    with pytest.raises(PreconditionFailedError) as refused:
        registry.asset_transfer(asset=asset, to_holder=roles.buyer, expected_holder=roles.buyer.id)
    assert refused.value.field == "expected_holder"
    registry.asset_transfer(asset=asset, to_holder=roles.buyer, if_match=[registry.asset_etag(asset_code=asset.code)],
                            expected_holder=roles.holder.id)


def test_a_retry_with_its_idempotency_key_gets_the_first_answer_not_412(roles):
    asset = valued_asset(roles)
    etag = etag_of(roles.exchange, asset.code)
    send = lambda: roles.exchange.post(f"/api/assets/{asset.code}/transfers/",  # noqa: E731
                                       {"to_holder": roles.buyer.id}, format="json", HTTP_IF_MATCH=etag,
                                       HTTP_IDEMPOTENCY_KEY="trade-1")
    first, retry = send(), send()
    assert first.status_code == retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()


# --- PostgreSQL: concurrent requests ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("precondition", ["if_match", "expected_holder"])
def test_of_concurrent_transfers_from_one_state_exactly_one_settles(roles, api_user, precondition):
    buyers = [registry.party_create(kind="household", name=f"household {i}") for i in range(4)]
    for round_ in range(4):
        asset = valued_asset(roles, code=f"CT-{round_}", lon=104.50 + round_ * 0.05)
        etag, holder = etag_of(roles.exchange, asset.code), asset.holder_id
        headers = {"HTTP_IF_MATCH": etag} if precondition == "if_match" else {}
        extra = {"expected_holder": holder} if precondition == "expected_holder" else {}
        url = f"/api/assets/{asset.code}/transfers/"
        responses = _concurrently([
            lambda b=b, url=url, extra=extra, headers=headers: roles.exchange.post(
                url, {"to_holder": b.id, **extra}, format="json", **headers) for b in buyers])
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 412, 412, 412], [r.json() for r in responses]
        winner = next(r for r in responses if r.status_code == 201).json()["to_holder"]
        assert all(r.json()["holder"] == winner for r in responses if r.status_code == 412)
        assert Entry.objects.filter(kind="asset.transfer", payload__asset=asset.code).count() == 1
    from ledger.registry import projection

    assert projection.registry_replay() == projection.registry_projection()
