"""The OpenAPI schema banks and exchanges integrate from: generated without a warning, every API URL in it."""

import re

import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

from config.common.api import PROBLEM_MEDIA_TYPE
from config.common.problems import PROBLEM_CONTENT_TYPE

# Django converters in a route ("<int:pledge_id>", "<code>") become OpenAPI path parameters ("{pledge_id}").
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/"}  # the schema and its Swagger UI describe the rest


def _routes(patterns, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def api_paths() -> set[str]:
    return {"/" + CONVERTER.sub(r"{\1}", route) for route in _routes(get_resolver().url_patterns)
            if route.startswith("api/")} - NOT_IN_SCHEMA


def generate(tmp_path) -> dict:
    target = tmp_path / "schema.yaml"
    # --fail-on-warn: any warning or error (a view left out, a name collision) is a CommandError.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    return yaml.safe_load(target.read_text())


def test_schema_is_valid_without_warnings_and_lists_every_api_path(tmp_path):
    schema = generate(tmp_path)
    paths = set(schema["paths"])

    expected = api_paths()
    assert {"/api/assets/", "/api/assets/{code}/pledges/", "/api/pledges/{pledge_id}/release/",
            "/api/assets/{code}/bundle/", "/api/verify/", "/api/ledger/checkpoint/", "/api/runs/", "/api/rasters/",
            "/api/parcels/"} <= expected
    assert sorted(expected - paths) == []

    operation_ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_schema_describes_shapes_media_types_and_problems(tmp_path):
    schema = generate(tmp_path)
    paths = schema["paths"]

    # Every operation has a described success response.
    for url, ops in paths.items():
        for method, op in ops.items():
            assert any(code.startswith("2") for code in op["responses"]), (method, url)

    pledge = paths["/api/assets/{code}/pledges/"]["post"]
    assert pledge["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PledgeCreateInput")
    assert pledge["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/PledgeOutput")
    assert pledge["responses"]["409"]["content"][PROBLEM_CONTENT_TYPE]["schema"]["$ref"].endswith("/Problem")
    assert "Idempotency-Key" in {p["name"] for p in pledge["parameters"]}

    assets = paths["/api/assets/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert assets["$ref"].endswith("/PaginatedAssetSummaryOutputList")

    assert set(paths["/api/ledger/checkpoint/"]["get"]["responses"]["200"]["content"]) == {"application/json",
                                                                                           "text/plain"}
    assert set(paths["/api/assets/{code}/certificate.pdf"]["get"]["responses"]["200"]["content"]) == {
        "application/pdf"}
    assert set(paths["/api/parcels/{parcel_id}/"]["get"]["responses"]["200"]["content"]) == {"application/geo+json"}
    assert PROBLEM_MEDIA_TYPE == PROBLEM_CONTENT_TYPE


def test_every_documented_error_is_a_problem_and_signed_in_operations_document_401(tmp_path):
    schema = generate(tmp_path)
    for url, ops in schema["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert set(response["content"]) == {PROBLEM_CONTENT_TYPE}, (method, url, code)
                    assert response["content"][PROBLEM_CONTENT_TYPE]["schema"]["$ref"].endswith("Problem"), (
                        method, url, code)
            assert "503" in op["responses"], (method, url)  # every answer waits for its entries to be on disk
            anonymous = {} in op.get("security", [{}])
            assert ("401" in op["responses"]) != anonymous, (method, url)
    assert "401" not in schema["paths"]["/api/verify/"]["post"]["responses"]
    assert "401" in schema["paths"]["/api/assets/"]["get"]["responses"]
    problem = schema["components"]["schemas"]["Problem"]
    assert problem["additionalProperties"] is True  # problem types add members of their own
