"""The bundle, certificate and verify endpoints: permissions, the same verdicts as the offline verifier, a one-page
certificate whose QR code decodes to the bundle's sha256 and the verify URL, and the JSON Schema."""

import copy
import hashlib
import io
import json
from pathlib import Path

import pytest

from ledger.bundles.certificate import certificate_qr_payload
from ledger.verifier.checks import MEDIA_TYPE, verify_bundle
from ledger.verifier.errors import BundleInvalidError
from tests.ledger.verifier.test_verify import TAMPERS

pytestmark = pytest.mark.django_db
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "bundle.schema.json"


@pytest.mark.parametrize("role", ["bureau", "bank", "exchange", "auditor"])
def test_any_role_downloads_the_bundle(scene, role):
    client = getattr(scene.roles, role)
    response = client.get(f"/api/assets/{scene.asset.code}/bundle/")
    assert response.status_code == 200
    assert response["Tanhui-Bundle-SHA256"] == hashlib.sha256(response.content).hexdigest()
    assert json.loads(response.content)["asset"]["code"] == scene.asset.code


@pytest.mark.parametrize("path", ["bundle/", "certificate.pdf"])
def test_anonymous_gets_401(scene, client, path):
    response = client.get(f"/api/assets/{scene.asset.code}/{path}")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_unknown_asset_is_404(scene):
    assert scene.roles.bank.get("/api/assets/510727-2026-999999/bundle/").status_code == 404


def test_same_tree_size_gives_the_same_bytes(scene):
    first = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/")
    size = json.loads(first.content)["checkpoint"]["tree_size"]
    again = scene.roles.auditor.get(f"/api/assets/{scene.asset.code}/bundle/?tree_size={size}")
    assert again.content == first.content


def test_bundle_for_a_checkpoint_too_small_is_404(scene):
    response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/?tree_size=1")
    assert response.status_code == 404 and "covers the asset's entries" in response.json()["detail"]


def test_bundle_matches_its_json_schema(bundle):
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(bundle, schema, cls=jsonschema.Draft202012Validator)


def test_verify_endpoint_accepts_a_valid_bundle_anonymously(bundle, client, scene):
    response = client.post("/api/verify/", json.dumps(bundle), content_type=MEDIA_TYPE)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["valid"] is True and body["asset"] == scene.asset.code
    assert body["holder"]["name"] == "Guanba village collective"
    assert [p["id"] for p in body["active_pledges"]] == [scene.second.id]


@pytest.mark.parametrize("mutate", TAMPERS)
def test_verify_endpoint_gives_the_same_verdicts(bundle, registry_key, client, mutate):
    tampered = copy.deepcopy(bundle)
    mutate(tampered)
    with pytest.raises(BundleInvalidError) as offline:
        verify_bundle(tampered, trusted_keys=[registry_key])
    response = client.post("/api/verify/", json.dumps({"bundle": tampered, "keys": [registry_key]}),
                           content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"valid": False, "field": offline.value.field, "reason": offline.value.reason,
                               "detail": str(offline.value)}


def test_verify_endpoint_trusts_the_registry_keys_by_default(bundle, client):
    tampered = copy.deepcopy(bundle)
    tampered["pledges"][1]["status"] = "released"
    response = client.post("/api/verify/", json.dumps(tampered), content_type="application/json")
    assert response.json()["field"] == "pledges[1].status"


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param("{not json", "not JSON", id="not-json"),
    pytest.param('{"format": "tanhui-pledge-bundle/0"}', "format is 'tanhui-pledge-bundle/0'", id="other-version"),
    pytest.param('{"bundle": {"format": "tanhui-pledge-bundle/1"}}', "asset is missing", id="missing-members"),
])
def test_verify_endpoint_refuses_unusable_input_with_422(client, db, body, expected):
    response = client.post("/api/verify/", body, content_type="application/json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert expected in response.json()["detail"]


def test_certificate_is_one_page_with_the_asset_and_a_qr_code_that_decodes(scene):
    import zxingcpp
    from PIL import Image
    from pypdf import PdfReader

    response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/certificate.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    bundle = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/")
    digest = hashlib.sha256(bundle.content).hexdigest()
    assert response["Tanhui-Bundle-SHA256"] == digest

    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert scene.asset.code in text
    size = json.loads(bundle.content)["checkpoint"]["tree_size"]
    assert f"tree size {size}" in text and "60,000.00 CNY" in text and "1,000.000000 t C" in text

    images = reader.pages[0].images
    assert len(images) == 1
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(images[0].data)))
    assert [d.text for d in decoded] == [certificate_qr_payload(
        asset_code=scene.asset.code, bundle_sha256=digest, verify_url="http://testserver/api/verify/")]
