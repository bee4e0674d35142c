"""The response checker that tests/conftest.py puts on every test client can fail: it refuses each kind of
response the schema does not allow, on a small hand-written schema and on the project's own."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.foundation.contract import ResponseContract, ResponseContractError, check_client_response, project_contract

USCC = "91350100M000100Y43"  # a valid unified social credit code
PROBLEM = {"type": "about:blank", "title": "Not found", "status": 404, "detail": "no such thing"}

SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/api/things/{id}/": {"get": {"operationId": "things_retrieve", "responses": {
            "200": {"description": "", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Thing"}}}},
            "404": {"description": "", "content": {"application/problem+json": {"schema": {
                "$ref": "#/components/schemas/Problem"}}}},
        }}},
        "/api/things/special/": {"get": {"operationId": "things_special", "responses": {
            "200": {"description": "", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/api/things/": {"post": {"operationId": "things_create", "requestBody": {"content": {"application/json": {
            "schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
            "responses": {"204": {"description": ""},
                          "400": {"description": "", "content": {"application/problem+json": {"schema": {
                              "$ref": "#/components/schemas/Problem"}}}}}}},
    },
    "components": {"schemas": {
        "Thing": {"type": "object", "required": ["id", "name", "seen_at"], "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "seen_at": {"type": "string", "format": "date-time"},
            "note": {"type": "string", "nullable": True},
            "owner": {"allOf": [{"$ref": "#/components/schemas/Owner"}], "nullable": True},
        }},
        "Owner": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}}},
    }},
}

THING = {"id": 1, "name": "larch", "seen_at": "2026-03-01T08:00:00+00:00", "note": None, "owner": {"id": 7}}


@pytest.fixture
def contract():
    return ResponseContract(SCHEMA)


def check(contract, body, *, status=200, content_type="application/json", path="/api/things/1/", method="GET"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return contract.check(method=method, path=path, status=status, content_type=content_type, body=raw)


def test_a_response_the_schema_allows_passes(contract):
    assert check(contract, THING).spec["operationId"] == "things_retrieve"
    assert check(contract, {**THING, "owner": None, "note": "planted 1998"}) is not None
    assert check(contract, PROBLEM, status=404, content_type="application/problem+json") is not None
    assert check(contract, b"hello", path="/api/things/special/", content_type="text/plain; charset=utf-8")
    assert check(contract, b"", path="/api/things/", method="POST", status=204, content_type=None)
    # literal path segments win over parameters
    assert check(contract, b"x", path="/api/things/special/", content_type="text/plain").template == \
        "/api/things/special/"


@pytest.mark.parametrize(("body", "fault"), [
    pytest.param({k: v for k, v in THING.items() if k != "name"}, "'name' is a required property", id="missing"),
    pytest.param({**THING, "colour": "green"}, "'colour' was unexpected", id="undocumented-member"),
    pytest.param({**THING, "id": "1"}, "'1' is not of type 'integer'", id="wrong-type"),
    pytest.param({**THING, "name": None}, "None is not of type 'string'", id="null-not-nullable"),
    pytest.param({**THING, "seen_at": "yesterday"}, "'yesterday' is not a 'date-time'", id="bad-date-time"),
    pytest.param({**THING, "owner": {"id": 7, "extra": 1}}, "'extra' was unexpected", id="nested-through-ref"),
    pytest.param({**THING, "owner": {}}, "'id' is a required property", id="nested-required"),
    pytest.param(b"{not json", "the body is not JSON", id="not-json"),
])
def test_a_body_that_breaks_the_schema_is_refused(contract, body, fault):
    with pytest.raises(ResponseContractError, match=fault):
        check(contract, body)


def test_an_undocumented_status_is_refused(contract):
    with pytest.raises(ResponseContractError, match=r"status 201 is not documented \(documented: 200, 404\)"):
        check(contract, THING, status=201)


def test_an_undocumented_media_type_is_refused(contract):
    with pytest.raises(ResponseContractError, match="media type 'text/html' is not documented for 200"):
        check(contract, b"<p>hi</p>", content_type="text/html")


def test_a_body_where_none_is_documented_is_refused(contract):
    with pytest.raises(ResponseContractError, match="status 204 documents no body"):
        check(contract, {"ok": True}, path="/api/things/", method="POST", status=204)


def test_an_error_must_be_a_problem(contract):
    with pytest.raises(ResponseContractError, match="an error answer must be application/problem\\+json"):
        check(contract, PROBLEM, status=404, content_type="application/json")
    with pytest.raises(ResponseContractError, match="'detail' is a required property"):
        check(contract, {k: v for k, v in PROBLEM.items() if k != "detail"}, status=404,
              content_type="application/problem+json")


def test_unknown_paths_and_methods_must_be_404_and_405_problems(contract):
    assert check(contract, PROBLEM, path="/api/nothing/", status=404, content_type="application/problem+json") is None
    with pytest.raises(ResponseContractError, match="no path of the schema matches, so the answer must be 404"):
        check(contract, THING, path="/api/nothing/")
    with pytest.raises(ResponseContractError, match="the schema has no such operation, so the answer must be 405"):
        check(contract, PROBLEM, method="DELETE", status=404, content_type="application/problem+json")


# --- on the project's own schema and test clients -----------------------------------------------------------


@pytest.mark.django_db
def test_the_project_schema_refuses_a_tampered_real_response(api_user):
    from ledger.registry import services as registry

    party = registry.party_create(kind="collective", name="Guanba village collective", uscc=USCC)
    _, auditor = api_user("auditor")
    response = auditor.get(f"/api/parties/{party.id}/")
    assert response.status_code == 200
    body = response.json()
    assert check_client_response(response).spec["operationId"] == "parties_retrieve"

    contract = project_contract()
    for tampered, fault in [({**body, "secret": "x"}, "'secret' was unexpected"),
                            ({**body, "kind": "dragon"}, "'dragon' is not one of"),
                            ({k: v for k, v in body.items() if k != "name"}, "'name' is a required property"),
                            ({**body, "created_at": "2026-13-01"}, "is not a 'date-time'")]:
        with pytest.raises(ResponseContractError, match=fault):
            contract.check(method="GET", path=f"/api/parties/{party.id}/", status=200,
                           content_type="application/json", body=json.dumps(tampered).encode())


@pytest.mark.django_db
@pytest.mark.parametrize("client_class", [APIClient, Client])
def test_every_test_client_checks_api_responses(api_user, monkeypatch, client_class):
    """A view that sends a member its serializer does not declare fails the test that calls it."""
    from ledger.registry import api
    from ledger.registry import services as registry

    registry.party_create(kind="collective", name="Guanba village collective", uscc=USCC)
    declared = api.PartyOutput.to_representation
    monkeypatch.setattr(api.PartyOutput, "to_representation",
                        lambda self, party: {**declared(self, party), "undeclared": 1})
    user, _ = api_user("auditor")
    client = client_class()
    client.force_login(user)
    with pytest.raises(ResponseContractError, match="'undeclared' was unexpected"):
        client.get("/api/parties/")


@pytest.mark.django_db
def test_an_undocumented_status_from_a_real_view_fails_the_test(api_user, monkeypatch):
    from rest_framework.response import Response

    from ledger.registry import api

    monkeypatch.setattr(api.PartyDetailView, "get", lambda self, request, party_id: Response({}, status=202))
    _, auditor = api_user("auditor")
    with pytest.raises(ResponseContractError, match="status 202 is not documented"):
        auditor.get("/api/parties/1/")


@pytest.mark.django_db
def test_responses_outside_the_api_are_not_checked(client):
    assert client.get("/healthz").status_code in (200, 503)


def test_an_accepted_request_must_fit_its_request_schema(contract):
    def post(request_body, status=204):
        body = b"" if status == 204 else json.dumps({**PROBLEM, "status": 400}).encode()
        return contract.check(method="POST", path="/api/things/", status=status,
                              content_type=None if status == 204 else "application/problem+json", body=body,
                              request_content_type="application/json", request_body=json.dumps(request_body).encode())

    assert post({"name": "larch", "ignored": 1}) is not None  # members the API ignores are fine
    with pytest.raises(ResponseContractError, match="accepted a request body its schema refuses: #/: 'name' is a "
                                                    "required property"):
        post({"title": "larch"})
    assert post({"title": "larch"}, status=400) is not None  # a refused request may be anything
