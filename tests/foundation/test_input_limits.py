"""Inputs that used to crash a worker or answer 500 (issue 14) get a 4xx with a clear problem body: JSON nested
100,000 deep whatever the recursion limit, numbers and strings canonical JSON cannot hold, page parameters beyond 64
bits, over-long parcel fields and CRSs, unreadable legend files, and bodies over their endpoint's limit."""

import io
import json
import sys
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from pyproj import CRS

from config.common import jsonlimits
from config.common.errors import JSONInputError
from geo import jsontext
from geo.legends import LegendError, legend_from_file
from geo.models import Parcel
from ledger.verifier import checks as verifier
from ledger.verifier.errors import BundleFormatError
from tests.foundation.contract import project_contract
from tests.geo.helpers import measured

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000 + "]" * 100_000  # 200 KB


def box(lon1=104.5, lat1=32.4, lon2=104.51, lat2=32.41):
    return {"type": "Polygon", "coordinates": [[[lon1, lat1], [lon2, lat1], [lon2, lat2], [lon1, lat2], [lon1, lat1]]]}


def feature(code, geometry=None, county="510727", **properties):
    return {"type": "Feature", "geometry": geometry or box(),
            "properties": {"code": code, "county": county, **properties}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:600]
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def post_raw(client, path, body, **extra):
    return client.post(path, body, content_type="application/json", **extra)


@pytest.fixture
def bureau(api_user):
    return api_user("bureau")[1]


# --- the depth limit, the same in all three parsers ----------------------------------------------------------------

PARSERS = [
    pytest.param(jsonlimits.json_loads, JSONInputError, id="config.common.jsonlimits"),
    pytest.param(jsontext.json_loads, jsontext.JSONTextError, id="geo.jsontext"),
    pytest.param(verifier.parse_json, BundleFormatError, id="ledger.verifier"),
]
DEPTHS = [  # (text, depth): strings are text, brackets inside them count for nothing
    ("1", 0), ("[]", 1), ("[[1]]", 2), ('{"a": [1, {"b": "[[[["}]}', 3), ('"\\"[["', 0), ("[[],[[[]]]]", 4),
    ('[[[["x"]], [[1]]]]', 4), ("[" * 64 + "]" * 64, 64), ('{"a":' * 20 + "1" + "}" * 20, 20),
]
REFUSED = [  # JSON the parsers refuse without recursing
    pytest.param(DEEP, id="100000-deep"),
    pytest.param("[" * 65 + "]" * 65, id="65-deep"),
    pytest.param("[" * 100_000, id="100000-unclosed"),
    pytest.param('{"a":' * 100_000, id="100000-objects-unclosed"),
    pytest.param("[" * 70 + '"unterminated ' + "]" * 70, id="unterminated-string"),
    pytest.param('["' + '\\"' * 100_000 + "\\", id="escapes-to-the-end"),
    pytest.param("[1e400]", id="1e400"),
    pytest.param("[-1e400]", id="minus-1e400"),
    pytest.param("[NaN]", id="nan"),
    pytest.param("[Infinity]", id="infinity"),
    pytest.param("[" + "9" * 5000 + "]", id="5000-digit-integer"),
    pytest.param("{not json", id="not-json"),
]


@pytest.mark.parametrize(("text", "depth"), DEPTHS)
def test_json_depth_is_measured_alike_by_the_three_copies(text, depth):
    assert jsonlimits.json_depth(text) == jsontext.json_depth(text) == verifier.json_depth(text) == depth


@pytest.mark.parametrize(("loads", "error"), PARSERS)
@pytest.mark.parametrize("text", REFUSED)
def test_json_the_parsers_refuse(loads, error, text):
    assert sys.getrecursionlimit() >= 100_000  # what py_ecc (through web3) sets at start-up: the hazard is real
    with pytest.raises(error):
        loads(text)


@pytest.mark.parametrize(("loads", "error"), PARSERS[:2])
def test_a_lone_surrogate_is_refused_and_a_pair_is_a_character(loads, error):
    with pytest.raises(error, match=r"lone UTF-16 surrogate \(\\ud800\)"):
        loads('{"name": "a\\ud800b"}')
    with pytest.raises(error, match=r"lone UTF-16 surrogate \(\\udc00\)"):
        loads('[{"\\udc00": 1}]')
    assert loads('["\\ud83c\\udf32", "\\\\ud800"]') == ["🌲", "\\ud800"]


def test_the_depth_scan_is_linear_on_a_large_document():
    feature_text = json.dumps(feature("F-1", {"type": "Polygon", "coordinates": [
        [[104.5 + i * 1e-5, 32.4] for i in range(1000)]]}))
    document = '{"type": "FeatureCollection", "features": [' + ",".join([feature_text] * 600) + "]}"
    assert len(document) > 10_000_000
    assert jsonlimits.json_depth(document) == 7  # collection, features, feature, geometry, rings, ring, position


# --- every JSON door refuses the 200 KB, 100,000-deep body, and the process lives on ------------------------------


def test_a_deep_body_is_refused_on_every_json_endpoint_and_the_process_survives(api_user, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    assert len(DEEP) == 200_000 and sys.getrecursionlimit() >= 100_000
    _, bureau = api_user("bureau")
    post_raw(bureau, "/api/parties/", "{}")  # warm up: the first request of a process sets up more
    for path in ("/api/parcels/", "/api/parties/", "/api/methods/", "/api/runs/", "/api/assets/"):
        body = measured(f"json-100000-deep {path}", lambda path=path: problem(post_raw(bureau, path, DEEP), 400))
        assert body["type"] == "/problems/invalid-json", path
        assert body["detail"] == "JSON nests arrays and objects 100000 deep; at most 64 levels are accepted"
        assert body["depth"] == 100_000 and body["max_depth"] == 64

    verify = measured("json-100000-deep /api/verify/",
                      lambda: problem(post_raw(client, "/api/verify/", DEEP), 422))  # the verifier's "unusable input"
    assert verify["type"] == "/problems/unusable-bundle"
    assert verify["detail"] == ("not JSON a verifier can check: arrays and objects nest 100000 deep, at most 64 "
                                "levels are accepted")

    deep_legend = SimpleUploadedFile("l.json", b'{"classes": ' + DEEP.encode() + b"}")
    legend = bureau.post("/api/rasters/", {"file": SimpleUploadedFile("x.tif", b"II*\x00"), "epoch": 2020,
                                           "legend": "pingwu", "legend_file": deep_legend}, format="multipart")
    assert problem(legend, 422)["detail"] == ("legend is not valid JSON: JSON nests arrays and objects 100001 deep; "
                                              "at most 64 levels are accepted")

    page_user, _ = api_user("bureau", username="page-bureau")
    page = Client()
    page.force_login(page_user)
    parcels_page = page.post("/bureau/upload/parcels/", {"file": SimpleUploadedFile("p.geojson", DEEP.encode())})
    assert parcels_page.status_code == 400
    assert "JSON nests arrays and objects 100000 deep" in parcels_page.content.decode()

    # Still alive, and still answering.
    assert bureau.post("/api/parcels/", collection(feature("ALIVE-1")), format="json").status_code == 201


def test_a_deep_legend_or_parcel_file_from_the_command_line(tmp_path):
    deep = tmp_path / "deep.geojson"
    deep.write_text(DEEP)
    with pytest.raises(CommandError, match="JSON nests arrays and objects 100000 deep"):
        call_command("import_parcels", str(deep))
    with pytest.raises(LegendError, match="JSON nests arrays and objects 100001 deep"):
        legend_from_file(b'{"classes": ' + DEEP.encode() + b"}")


# --- page parameters ------------------------------------------------------------------------------------------------


def _list_operations():
    contract = project_contract()
    for template, item in contract.document["paths"].items():
        operation = item.get("get")
        if operation and any(p.get("name") == "limit" for p in operation.get("parameters", [])):
            yield template, operation


def test_every_list_documents_limits_and_400():
    listed = list(_list_operations())
    assert {"/api/parcels/", "/api/rasters/", "/api/parties/", "/api/methods/", "/api/runs/",
            "/api/runs/{run_id}/results/", "/api/ledger/checkpoints/", "/api/webhooks/"} <= {t for t, _ in listed}
    for template, operation in listed:
        limit = next(p for p in operation["parameters"] if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, template
        assert "400" in operation["responses"], template


@pytest.mark.parametrize("value", [str(2**63), str(2**64), "9" * 40, "-1", "0", "abc", "1e3", "١٢"])
def test_a_limit_beyond_64_bits_or_not_a_number_is_400_on_every_list(api_user, value):
    clients = {"auditor": api_user("auditor")[1], "bank": api_user("bank")[1]}
    for template, _ in _list_operations():
        path = template.replace("{run_id}", "1")
        client = clients["bank" if template.startswith("/api/webhooks/") else "auditor"]  # webhooks are a bank's
        response = client.get(path, {"limit": value})
        assert 400 <= response.status_code < 500, (template, response.status_code, response.content[:300])
        if "{" not in template:
            body = problem(response, 400)
            assert body["errors"] == [{"pointer": "#/limit", "detail": (
                f"limit must be a whole number from 1 to 9223372036854775807; got {value!r}")}], template


def test_an_offset_beyond_64_bits_is_400_and_a_large_one_an_empty_page(api_user):
    _, auditor = api_user("auditor")
    body = problem(auditor.get("/api/parties/", {"offset": str(2**63)}), 400)
    assert body["errors"][0]["pointer"] == "#/offset"
    assert auditor.get("/api/parties/", {"offset": str(2**63 - 1)}).json()["results"] == []


def test_a_page_holds_at_most_api_max_page_size(bureau, settings):
    settings.API_MAX_PAGE_SIZE = 2
    codes = [f"P-{i}" for i in range(3)]
    assert bureau.post("/api/parcels/", collection(*[feature(c, box(104.5 + i / 100, 32.4, 104.505 + i / 100, 32.41))
                                                      for i, c in enumerate(codes)]), format="json").status_code == 201
    page = bureau.get("/api/parcels/", {"limit": "1000000"}).json()
    assert page["count"] == 3 and len(page["features"]) == 2
    assert "limit=2" in page["next"]
    assert len(bureau.get("/api/parcels/").json()["features"]) == 2  # the default page is capped too


# --- canonical JSON behind an Idempotency-Key, and numbers the parser refuses ---------------------------------------

PARTY = '{"kind": "company", "name": "Tencent", "uscc": "9144030071526726XG", "note": %s}'


@pytest.mark.parametrize("value", [str(2**53), str(-(2**53)), str(2**64)])
def test_an_integer_beyond_i_json_with_an_idempotency_key_is_422(bureau, value):
    body = problem(post_raw(bureau, "/api/parties/", PARTY % value, HTTP_IDEMPOTENCY_KEY="k-big"), 422)
    assert body["type"] == "/problems/invalid-registry-request"
    assert body["detail"].startswith("a request with an Idempotency-Key must hold integers within ±(2^53 - 1)")
    assert post_raw(bureau, "/api/parties/", PARTY % "1", HTTP_IDEMPOTENCY_KEY="k-big").status_code == 201


@pytest.mark.parametrize(("value", "detail"), [
    ("1e400", "JSON number 1e400 is beyond the range of a double (about 1.8e308)"),
    ("-1e400", "JSON number -1e400 is beyond the range of a double (about 1.8e308)"),
    ('"a\\ud800"', "a JSON string holds a lone UTF-16 surrogate (\\ud800), which is not a character"),
    ("NaN", "NaN is not a JSON value"),
    ('"a\\u0000b"', "a JSON string holds U+0000 (NUL), which cannot be stored"),
])
@pytest.mark.parametrize("key", [None, "k-1"], ids=["no-key", "idempotency-key"])
def test_numbers_and_strings_json_cannot_carry_are_400(bureau, value, detail, key):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = problem(post_raw(bureau, "/api/parties/", PARTY % value, **extra), 400)
    assert body["type"] == "/problems/invalid-json" and body["detail"] == detail


def test_a_body_that_is_not_utf8_is_400(bureau):
    body = problem(bureau.post("/api/parties/", b'{"name": "\xff"}', content_type="application/json"), 400)
    assert body["detail"] == "JSON must be UTF-8 text; byte 10 (0xff) is not"


@pytest.mark.parametrize("seed", [2**63, -(2**63) - 1, 10**30])
def test_a_run_seed_beyond_64_bits_is_400(bureau, seed):
    body = problem(post_raw(bureau, "/api/runs/", f'{{"raster": 1, "method": 1, "county": "510727", "seed": {seed}}}'),
                   400)
    assert "#/seed" in [e["pointer"] for e in body["errors"]]


# --- parcels: lengths, pointers, the CRS -----------------------------------------------------------------------------


def test_an_over_long_code_or_name_is_422_with_a_pointer(bureau):
    data = collection(feature("OK-1"), feature("C" * 65, box(104.6, 32.4, 104.61, 32.41)),
                      feature("OK-2", box(104.7, 32.4, 104.71, 32.41), name="n" * 256),
                      feature("C" * 64, box(104.8, 32.4, 104.81, 32.41), name="n" * 255))
    body = problem(bureau.post("/api/parcels/", data, format="json"), 422)
    assert body["errors"] == [
        {"pointer": "#/features/1/properties/code", "index": 1, "code": "C" * 64,
         "detail": "property 'code' is 65 characters long; at most 64 are accepted"},
        {"pointer": "#/features/2/properties/name", "index": 2, "code": "OK-2",
         "detail": "property 'name' is 256 characters long; at most 255 are accepted"}]
    assert Parcel.objects.count() == 0
    del data["features"][1:3]
    assert bureau.post("/api/parcels/", data, format="json").status_code == 201  # 64 and 255 are fine


def test_a_long_wkt_crs_is_kept_and_an_over_long_one_is_422(bureau):
    wkt = CRS.from_epsg(4544).to_wkt()  # CGCS2000 / 3-degree Gauss-Kruger CM 105E, about 1.5 KB
    assert len(wkt) > 64
    x, y = 452_000, 3_585_000
    square = {"type": "Polygon", "coordinates": [[[x, y], [x + 100, y], [x + 100, y + 100], [x, y + 100], [x, y]]]}
    response = bureau.post("/api/parcels/?" + urlencode({"crs": wkt}), collection(feature("W-1", square)),
                           format="json")
    assert response.status_code == 201, response.content
    assert Parcel.objects.get(code="W-1").source_crs == wkt

    too_long = wkt + " " * 10_000
    body = problem(bureau.post("/api/parcels/?" + urlencode({"crs": too_long}), collection(feature("W-2", square)),
                               format="json"), 422)
    assert body["errors"] == [{"parameter": "crs", "index": None, "code": None, "detail": (
        f"crs is {len(too_long)} characters long; at most 10000 are accepted (an authority code such as EPSG:4545, "
        "or a WKT)")}]
    unknown = problem(bureau.post("/api/parcels/?crs=EPSG:999999", collection(feature("W-3", square)),
                                  format="json"), 422)
    assert unknown["errors"][0]["parameter"] == "crs"


def test_a_file_level_parcel_problem_points_at_the_file(bureau):
    body = problem(bureau.post("/api/parcels/", {"type": "FeatureCollection", "features": []}, format="json"), 422)
    assert body["errors"] == [{"pointer": "#/features", "index": None, "code": None,
                               "detail": "the FeatureCollection has no features"}]


# --- legend files -----------------------------------------------------------------------------------------------------


def _upload_legend(client, content: bytes, legend="pingwu"):
    raster = io.BytesIO(b"II*\x00")
    raster.name = "x.tif"
    return client.post("/api/rasters/", {"file": raster, "epoch": 2020, "legend": legend,
                                         "legend_file": SimpleUploadedFile("legend.csv", content)}, format="multipart")


@pytest.mark.parametrize(("content", "detail"), [
    (b"lucode,name,ipcc_category\n1,For\xeat,forest_land\n",
     "the legend file is not UTF-8 text: byte 31 (0xea) cannot be read"),
    (b"lucode,name,ipcc_category\n1,\"" + b"x" * 131_073 + b"\",forest_land\n",
     "legend table line 2 cannot be read: field larger than field limit (131072)"),
    (b"lucode,name,ipcc_category\n1,a\x00b,forest_land\n",
     "the legend file holds a NUL character (U+0000) at character 29"),
    (b"lucode,name,ipcc_category\n" + b"1,x,forest_land\n" * 70_000, "the legend file is larger than 1048576 bytes"),
], ids=["invalid-utf8", "csv-field-over-131072", "nul-byte", "over-1-mib"])
def test_an_unreadable_legend_file_is_422(bureau, settings, tmp_path, content, detail):
    settings.MEDIA_ROOT = tmp_path / "media"
    body = problem(_upload_legend(bureau, content), 422)
    assert body["type"] == "/problems/invalid-legend" and body["detail"] == detail


@pytest.mark.parametrize("how", ["form-name", "json-name"])
def test_a_custom_legend_may_not_take_a_builtin_name(bureau, settings, tmp_path, how):
    settings.MEDIA_ROOT = tmp_path / "media"
    if how == "form-name":
        response = _upload_legend(bureau, b"lucode,name,ipcc_category\n1,x,forest_land\n", legend="esa-worldcover")
    else:
        response = _upload_legend(bureau, json.dumps({"name": "clcd", "classes": [
            {"code": 1, "name": "x", "ipcc_category": "forest_land"}]}).encode(), legend="custom")
    body = problem(response, 422)
    assert body["detail"].startswith("a custom legend may not take the name of the built-in legend ")


# --- body-size limits -------------------------------------------------------------------------------------------------


def test_an_anonymous_body_over_its_limit_is_413_before_it_is_read(client, settings):
    settings.MAX_ANONYMOUS_BODY_BYTES = 1000
    body = problem(post_raw(client, "/api/verify/", " " * 1001), 413)
    assert body["type"] == "/problems/upload-too-large"
    assert body["detail"] == ("the request body is 1001 bytes; the limit here (MAX_ANONYMOUS_BODY_BYTES) is 1000 "
                              "bytes")
    assert body["limit_setting"] == "MAX_ANONYMOUS_BODY_BYTES"
    # With a token (even a wrong one), POST /api/verify/ still takes at most MAX_ANONYMOUS_BODY_BYTES.
    assert post_raw(client, "/api/verify/", " " * 1001, HTTP_AUTHORIZATION="Token nope").status_code == 413


def test_the_default_verify_limit_refuses_105_mb_unread(client):
    """The issue's anonymous 105 MB POST /api/verify/, refused from its Content-Length (the test client holds the
    body in memory itself: the memory figure counts that copy)."""
    post_raw(client, "/api/verify/", "{}")  # warm up
    payload = b" " * 105_000_000
    body = measured("anonymous-105mb /api/verify/", lambda: problem(post_raw(client, "/api/verify/", payload), 413))
    assert body["limit_bytes"] == 20 * 1024**2


def test_an_anonymous_post_anywhere_is_capped_lower(client, settings):
    settings.MAX_ANONYMOUS_BODY_BYTES = 1000
    assert problem(post_raw(client, "/api/parcels/", " " * 2000), 413)["limit_setting"] == (
        "MAX_ANONYMOUS_BODY_BYTES")  # refused before the 401 it would otherwise get
    page = client.post("/bureau/upload/raster/", {"file": SimpleUploadedFile("x.tif", b"x" * 2000)})
    assert page.status_code == 413 and page["Content-Type"].startswith("text/plain")


def test_a_signed_in_body_over_the_default_limit_is_413(bureau, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    body = problem(post_raw(bureau, "/api/parties/", '{"name": "%s"}' % ("x" * 1000)), 413)
    assert body["limit_setting"] == "MAX_REQUEST_BODY_BYTES"


def test_parcels_take_up_to_their_own_limit_beyond_the_default(bureau, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    settings.MAX_PARCEL_FILE_BYTES = 100_000
    data = collection(feature("BIG-1", name="n" * 200), feature("BIG-2", box(104.6, 32.4, 104.61, 32.41),
                                                              note="x" * 2000))
    assert bureau.post("/api/parcels/", data, format="json").status_code == 201
    settings.MAX_PARCEL_FILE_BYTES = 1000
    assert problem(bureau.post("/api/parcels/", data, format="json"), 413)["limit_setting"] == "MAX_PARCEL_FILE_BYTES"


def test_every_operation_with_a_body_documents_413():
    for template, item in project_contract().document["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch"):
                assert "413" in operation["responses"], (method, template)


def test_the_new_refusals_speak_chinese(bureau, client, settings):
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}
    deep = problem(post_raw(bureau, "/api/parcels/", DEEP, **zh), 400)
    assert deep["title"] == "JSON 无效" and deep["detail"] == "JSON 中数组和对象嵌套 100000 层；最多接受 64 层"
    settings.MAX_ANONYMOUS_BODY_BYTES = 10
    big = problem(post_raw(client, "/api/verify/", " " * 11, **zh), 413)
    assert big["detail"] == "请求体为 11 字节；此处的上限（MAX_ANONYMOUS_BODY_BYTES）为 10 字节"
    limit = problem(bureau.get("/api/parties/", {"limit": "0"}, **zh), 400)
    assert limit["errors"][0]["detail"] == "limit 须为 1 到 9223372036854775807 之间的整数，实际为 '0'"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["/api/assets/?holder=18446744073709551616",
                                   "/api/pledges/?pledgee=18446744073709551616"])
def test_an_id_filter_beyond_64_bits_is_a_400(api_user, query):
    """Found by a probe: GET /api/assets/?holder=2**64 was a 500 (the database cannot hold the number)."""
    _, client = api_user("bank")
    assert client.get(query).status_code == 400
