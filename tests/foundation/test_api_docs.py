"""The API docs a newcomer reads: method kinds and their typed parameters, examples that the API accepts, webhooks
documented as they are sent, and descriptions written for users."""

import copy
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from rest_framework.test import APIClient

from accounting.methods.errors import MethodParameterError
from accounting.methods.spec import METHOD_SPECS, method_spec, validate_method_parameters
from ledger.core.replay import KINDS
from ledger.webhooks.services import SIGNATURE_HEADER, webhook_signature
from tests.foundation.contract import FORMATS, project_contract, to_json_schema

ROOT = Path(__file__).resolve().parents[2]


def schema() -> dict:
    return project_contract().document


def operation(path: str, method: str) -> dict:
    return schema()["paths"][path][method]


def component(name: str) -> dict:
    return schema()["components"]["schemas"][name]


def validator(fragment: dict, *, closed: bool) -> Draft4Validator:
    contract = project_contract()
    registry = contract.registry if closed else contract.request_registry
    return Draft4Validator(to_json_schema(fragment, closed=closed), registry=registry, format_checker=FORMATS)


def examples(content: dict):
    for media, body in content.items():
        for name, example in (body.get("examples") or {}).items():
            yield media, name, example["value"], body["schema"]


# --- GET /api/methods/kinds/ -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["bureau", "bank", "exchange", "auditor"])
def test_method_kinds_are_the_spec_itself(api_user, role):
    _, client = api_user(role)
    response = client.get("/api/methods/kinds/")
    assert response.status_code == 200
    assert response.json() == [method_spec(kind) for kind in sorted(METHOD_SPECS)]
    assert [k["kind"] for k in response.json()] == ["ipcc_tier1", "pool_table", "volume_bcef"]
    pools = next(p for p in response.json()[1]["parameters"] if p["name"] == "pools")
    assert pools["type"] == "list" and "c_soil" in [f["name"] for f in pools["values"]["fields"]]


@pytest.mark.django_db
def test_method_kinds_need_a_signed_in_role(django_user_model):
    assert APIClient().get("/api/methods/kinds/").status_code == 401
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("no-role"))
    response = client.get("/api/methods/kinds/")
    assert response.status_code == 403
    assert response.json()["detail"] == "this action needs the role bureau or bank or exchange or auditor"


# --- POST /api/methods/: one typed request body per kind --------------------------------------------------------


def test_method_request_is_one_of_the_kinds_each_typed_from_its_spec():
    body = operation("/api/methods/", "post")["requestBody"]["content"]["application/json"]["schema"]
    variants = component(body["$ref"].rsplit("/", 1)[1])
    assert variants["discriminator"]["propertyName"] == "kind"
    assert set(variants["discriminator"]["mapping"]) == set(METHOD_SPECS)
    for kind in METHOD_SPECS:
        camel = "".join(part.capitalize() for part in kind.split("_"))
        parameters = component(f"{camel}Parameters")
        declared = method_spec(kind)["parameters"]
        assert list(parameters["properties"]) == [p["name"] for p in declared]
        assert parameters.get("required", []) == [p["name"] for p in declared if p["required"]]
        assert parameters["additionalProperties"] is False  # the validator refuses unknown keys too


def _request_examples(path, method):
    content = operation(path, method)["requestBody"]["content"]
    found = [(name, value, body_schema) for _, name, value, body_schema in examples(content)]
    assert found, f"{method.upper()} {path} has no request example"
    return found


@pytest.mark.parametrize("kind", sorted(METHOD_SPECS))
def test_each_kind_has_an_example_the_api_accepts(kind):
    found = [(n, v, s) for n, v, s in _request_examples("/api/methods/", "post") if v["kind"] == kind]
    assert len(found) == 1
    _, value, body_schema = found[0]
    assert validate_method_parameters(kind, value["parameters"])  # the service would publish it
    assert not list(validator(body_schema, closed=False).iter_errors(value))


# Documents that the kind's validator refuses, and the schema refuses too (the checks across parameters, such as
# repeated land-cover codes, are the validator's alone).
REFUSED = [
    ("pool_table", lambda p: p["pools"][0].update(c_soil=-1.0), "-1.0 is less than the minimum of 0.0"),
    ("pool_table", lambda p: p["pools"][0].update(c_sol=1.0), "'c_sol' was unexpected"),
    ("pool_table", lambda p: p["pools"][0].pop("c_above"), "'c_above' is a required property"),
    ("pool_table", lambda p: p["pools"][0].update(lucode="ten"), "'ten' is not of type 'integer'"),
    ("pool_table", lambda p: p["uncertainty_pct"].update(c_soil="40"), "'40' is not of type 'number'"),
    ("ipcc_tier1", lambda p: p["categories"]["forest_land"].update(forest_type="bamboo"), "'bamboo' is not one of"),
    ("ipcc_tier1", lambda p: p["categories"]["forest_land"].update(carbon_fraction=1.5),
     "1.5 is greater than the maximum of 1.0"),
    ("ipcc_tier1", lambda p: p.update(allow_unconfirmed_defaults="yes"), "'yes' is not of type 'boolean'"),
    ("volume_bcef", lambda p: p["classes"]["10"].update(bcef_group="tropical"), "'tropical' is not one of"),
    ("volume_bcef", lambda p: p.update(zero_stock_classes=["water"]), "'water' is not of type 'integer'"),
]


@pytest.mark.parametrize(("kind", "spoil", "fault"), REFUSED, ids=[f"{k}-{f[:24]}" for k, _, f in REFUSED])
def test_the_parameter_schemas_refuse_what_the_validator_refuses(kind, spoil, fault):
    (_, value, body_schema), = [(n, v, s) for n, v, s in _request_examples("/api/methods/", "post")
                                if v["kind"] == kind]
    spoiled = copy.deepcopy(value)
    spoil(spoiled["parameters"])
    with pytest.raises(MethodParameterError):
        validate_method_parameters(kind, spoiled["parameters"])
    messages = [e.message for e in validator(body_schema, closed=False).iter_errors(spoiled)]
    messages += [sub.message for e in validator(body_schema, closed=False).iter_errors(spoiled)
                 for sub in e.context or ()]
    assert any(fault in m for m in messages), messages


# --- examples --------------------------------------------------------------------------------------------------

MAIN_CALLS = [("/api/parcels/", "post"), ("/api/methods/", "post"), ("/api/runs/", "post"), ("/api/assets/", "post"),
              ("/api/assets/{code}/valuations/", "post"), ("/api/assets/{code}/pledges/", "post"),
              ("/api/assets/{code}/transfers/", "post"), ("/api/verify/", "post"), ("/api/webhooks/", "post")]


@pytest.mark.parametrize(("path", "method"), MAIN_CALLS)
def test_the_main_calls_have_request_examples_that_fit_their_schema(path, method):
    for name, value, body_schema in _request_examples(path, method):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(body_schema, closed=False)
                  .iter_errors(value)]
        assert errors == [], name


def test_every_response_example_fits_its_response_schema():
    seen = 0
    for path, ops in schema()["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                for media, name, value, body_schema in examples(response.get("content") or {}):
                    seen += 1
                    errors = [e.message for e in validator(body_schema, closed=True).iter_errors(value)]
                    assert errors == [], (method, path, status, media, name)
    assert seen >= 2  # the bundle verdicts, valid and invalid


def test_the_parcel_import_example_is_a_file_the_importer_accepts():
    from geo.parcels import parse_feature_collection

    (_, value, _), = _request_examples("/api/parcels/", "post")
    drafts = parse_feature_collection(value)
    assert [d.code for d in drafts] == ["GB-0001", "GB-0002"]
    body = component("ParcelImport")
    assert body["properties"]["features"]["items"]["$ref"].endswith("/ParcelFeatureInput")
    assert component("ParcelFeatureProperties")["required"] == ["code", "county"]


# --- webhooks --------------------------------------------------------------------------------------------------


def test_webhook_subscription_is_documented_as_it_is_sent():
    description = operation("/api/webhooks/", "post")["description"]
    for kind in KINDS:
        assert f"`{kind}`" in description
    for needle in (SIGNATURE_HEADER, "t=<unix seconds>,v1=<hex HMAC-SHA256>", '`"<t>."`', "Tanhui-Delivery",
                   "Tanhui-Event", "entry_hash", "payload", "seq", "timestamp"):
        assert needle in description, needle


def test_webhooks_md_lists_every_kind_and_its_example_signature_verifies():
    text = (ROOT / "docs" / "webhooks.md").read_text()
    assert "[docs/webhooks.md](docs/webhooks.md)" in (ROOT / "README.md").read_text()
    for kind in KINDS:
        assert f"| `{kind}` |" in text, kind
    secret = re.search(r'"secret": "([0-9a-f]{64})"', text).group(1)
    header = re.search(rf"^{SIGNATURE_HEADER}: (t=(\d+),v1=([0-9a-f]{{64}}))$", text, re.M)
    body = re.search(r"^(\{\"delivery\".*\})$", text, re.M).group(1).encode()
    assert webhook_signature(secret=secret, timestamp=int(header.group(2)), body=body) == header.group(1)
    assert f"`v1` is\n`{header.group(3)}`" in text
    event = json.loads(body)
    assert sorted(event) == ["delivery", "entry_hash", "event", "payload", "seq", "timestamp"]
    assert body == json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- descriptions for users ------------------------------------------------------------------------------------

INTERNAL = re.compile(r"service|projection|doorway|serializ|selector|docstring|\.py\b|"
                      r"\b(?!ledger\.verifier\b)(?:ledger|accounting|geo|config|tests)\.[a-z_]+", re.I)


def _texts(node, where=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary", "title") and isinstance(value, str):
                yield f"{where}/{key}", value
            yield from _texts(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _texts(value, f"{where}/{index}")


def test_the_schema_speaks_to_users_not_about_the_code():
    leaks = [(where, INTERNAL.findall(text)) for where, text in _texts(schema()) if INTERNAL.search(text)]
    assert leaks == []
    assert INTERNAL.search("the registry service") and INTERNAL.search("see ledger.registry.projection")
    assert not INTERNAL.search("python -m ledger.verifier BUNDLE.json")


def test_every_operation_says_what_it_does():
    undocumented = [(method, path) for path, ops in schema()["paths"].items() for method, op in ops.items()
                    if not (op.get("summary") or op.get("description"))]
    assert undocumented == []
