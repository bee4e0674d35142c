"""Both languages, everywhere (issue #13): refusals over the API in the caller's language, error pages in the
user's language, figures grouped alike in English and Chinese, and no message without its Chinese."""

import ast
import gettext
import html
import io
import json
import re
import tokenize
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import path
from django.utils import translation
from rest_framework.views import APIView

from config.common.pagetags import grouped

ROOT = Path(__file__).resolve().parent.parent.parent
CATALOG = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


# --- a refusal from each app, in Chinese with Accept-Language: zh-Hans and in English without it ---------------


def _point_and_bad_county():
    point = {"type": "Point", "coordinates": [104.5, 32.4]}
    square = {"type": "Polygon", "coordinates": [[[104.5, 32.4], [104.51, 32.4], [104.51, 32.41], [104.5, 32.4]]]}
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": point, "properties": {"code": "A-1", "county": "510727"}},
        {"type": "Feature", "geometry": square, "properties": {"code": "A-2", "county": "5107"}},
    ]}


@pytest.mark.django_db
def test_geo_refusal_in_chinese_and_english(api_user):
    _, bureau = api_user("bureau", county="510727")
    zh = problem(bureau.post("/api/parcels/", _point_and_bad_county(), format="json", **ZH), 422)
    assert zh["title"] == "地块无效"
    not_polygon = "几何类型应为 Polygon 或 MultiPolygon，实际为 'Point'"
    bad_county = "属性 'county'：县级行政区划代码应为 6 位数字（GB/T 2260），实际为 '5107'"
    assert zh["detail"] == f"2 个要素有误，未导入任何地块：要素 0：{not_polygon}；要素 1：{bad_county}"
    assert zh["errors"] == [{"pointer": "#/features/0/geometry", "index": 0, "code": "A-1", "detail": not_polygon},
                            {"pointer": "#/features/1/properties/county", "index": 1, "code": "A-2",
                             "detail": bad_county}]

    en = problem(bureau.post("/api/parcels/", _point_and_bad_county(), format="json"), 422)
    assert en["title"] == "Invalid parcels"
    assert en["detail"] == ("2 bad feature(s), nothing imported: feature 0: geometry must be a Polygon or "
                            "MultiPolygon; got 'Point'; feature 1: property 'county': county code must be 6 digits "
                            "(GB/T 2260), got '5107'")
    assert [e["detail"] for e in en["errors"]] == [
        "geometry must be a Polygon or MultiPolygon; got 'Point'",
        "property 'county': county code must be 6 digits (GB/T 2260), got '5107'"]


@pytest.mark.django_db
def test_role_refusal_and_drf_validation_in_chinese(api_user):
    _, bank = api_user("bank")
    refused = problem(bank.post("/api/parcels/", {}, format="json", **ZH), 403)
    assert refused["title"] == "禁止访问"
    assert refused["detail"] == "此操作需要以下角色：生态环境/林草主管部门"
    assert problem(bank.post("/api/parcels/", {}, format="json"), 403)["detail"] == "this action needs the role bureau"

    _, auditor = api_user("auditor")
    invalid = problem(auditor.get("/api/ledger/consistency/?first=0&second=3", **ZH), 400)
    assert invalid["title"] == "请求无效"
    assert invalid["errors"] == [{"pointer": "#/first", "detail": "请确保该值大于或者等于 1。"}]  # DRF's own catalog
    backwards = problem(auditor.get("/api/ledger/consistency/?first=5&second=3", **ZH), 400)
    assert backwards["errors"] == [{"pointer": "#/second", "detail": "second=3 小于 first=5"}]  # ours


@pytest.mark.django_db
def test_accounting_refusal_in_chinese_and_english(api_user):
    _, bureau = api_user("bureau", county="510727")
    bad = {"kind": "pool_table", "parameters": {"pools": [
        {"lucode": 2, "c_above": -1, "c_below": 30, "c_soil": "lots", "c_dead": 0}]}}
    zh = problem(bureau.post("/api/methods/", bad, format="json", **ZH), 422)
    assert zh["title"] == "核算方法参数无效"
    assert zh["detail"] == ("核算方法 'pool_table' 的参数无效：pools[0].c_above：应 >= 0.0 t C/ha，实际为 -1；"
                            "pools[0].c_soil：应为数值 (t C/ha)，实际为 'lots'")
    assert zh["errors"] == [
        {"pointer": "#/parameters/pools[0]/c_above", "detail": "应 >= 0.0 t C/ha，实际为 -1"},
        {"pointer": "#/parameters/pools[0]/c_soil", "detail": "应为数值 (t C/ha)，实际为 'lots'"},
    ]

    en = problem(bureau.post("/api/methods/", bad, format="json"), 422)
    assert en["title"] == "Invalid method parameters"
    assert en["detail"] == ("invalid parameters for method 'pool_table': pools[0].c_above: expected >= 0.0 t C/ha, "
                            "got -1; pools[0].c_soil: expected a number (t C/ha), got 'lots'")


@pytest.mark.django_db
def test_ledger_refusals_in_chinese_and_english(api_user):
    from ledger.log.services import checkpoint_sign_latest, entry_append

    for n in range(3):
        entry_append(kind="test.note", payload={"n": n})
    checkpoint_sign_latest(force=True)
    _, auditor = api_user("auditor")

    zh = problem(auditor.get("/api/ledger/entries/99/", **ZH), 404)
    assert (zh["title"], zh["detail"]) == ("无此账本记录", "没有第 99 条记录：账本共有 3 条记录（seq 0..2）")
    assert (zh["seq"], zh["tree_size"]) == (99, 3)
    en = problem(auditor.get("/api/ledger/entries/99/"), 404)
    assert (en["title"], en["detail"]) == ("No such ledger entry", "no entry 99: the ledger holds 3 entries (seq 0..2)")

    zh = problem(auditor.get("/api/ledger/checkpoints/?size=2", **ZH), 404)
    assert zh["detail"] == "没有规模为 2 的检查点；最接近的已签署检查点规模：较小者 无，较大者 3"
    assert (zh["size_below"], zh["size_above"]) == (None, 3)
    assert problem(auditor.get("/api/ledger/checkpoints/?size=2"), 404)["detail"] == (
        "no checkpoint of size 2; nearest signed sizes: none below, 3 above")

    zh = problem(auditor.get("/api/ledger/entries/1/proof/?tree_size=9", **ZH), 422)
    assert (zh["title"], zh["detail"]) == ("树规模超出范围", "tree_size 9 超出账本现有记录数 3")


@pytest.mark.django_db
def test_a_cookie_language_beats_the_header_and_zh_cn_means_simplified(api_user, settings):
    _, auditor = api_user("auditor")
    assert problem(auditor.get("/api/ledger/entries/5/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9"), 404)["title"] == (
        "无此账本记录")
    auditor.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert problem(auditor.get("/api/ledger/entries/5/", **ZH), 404)["title"] == "No such ledger entry"


# --- the pages show the same refusals in the user's language, next to the field -----------------------------


def field_error(response, field: str) -> str:
    found = re.findall(rf'<p class="error" id="id_{field}-error">(.*?)</p>', response.content.decode(), re.S)
    return html.unescape(" ".join(found))


@pytest.fixture
def bureau_page(db, tmp_path, settings):
    from geo.accounts import api_user_create

    settings.MEDIA_ROOT = tmp_path / "media"
    user, _ = api_user_create(username="bureau-page", role="bureau", county_code="510727")
    client = Client()
    client.force_login(user)
    return client


def test_upload_page_refusals_in_chinese(bureau_page):
    from tests.pages.conftest import parcels_geojson

    raster = bureau_page.post("/bureau/upload/raster/", {
        "file": SimpleUploadedFile("notes.tif", b"not an image"), "epoch": 2021, "legend": "clcd"}, **ZH)
    assert raster.status_code == 422
    assert field_error(raster, "file") == ('不是 GeoTIFF：文件开头为 "not " (6e 6f 74 20)，而不是 TIFF 文件标识'
                                           "（II*、MM*，BigTIFF 为 II+、MM+）；仅接受 GeoTIFF 和云优化 GeoTIFF（COG）")

    collection = parcels_geojson(codes=("X-1", "X-2"))
    collection["features"][1]["properties"]["county"] = "12"
    upload = SimpleUploadedFile("parcels.geojson", json.dumps(collection).encode())
    parcels = bureau_page.post("/bureau/upload/parcels/", {"file": upload}, **ZH)
    assert parcels.status_code == 422
    assert field_error(parcels, "file") == (
        "要素 1 (X-2)：属性 'county'：县级行政区划代码应为 6 位数字（GB/T 2260），实际为 '12'")


def test_runs_page_refusal_in_chinese_and_english(bureau_page):
    def publish(language):
        return bureau_page.post("/runs/methods/", {"name": "bad", "pool_table": SimpleUploadedFile(
            "pools.csv", b"lucode,c_above\n2,10\n")}, **language)

    zh = publish(ZH)
    assert zh.status_code == 422
    assert field_error(zh, "pool_table") == (
        "碳库参数表，第 0 行：表头缺少 ['c_below', 'c_soil', 'c_dead']；应有列 ['lucode', 'c_above', 'c_below', "
        "'c_soil', 'c_dead']（不区分大小写），实际为 ['lucode', 'c_above']")
    assert field_error(publish(EN), "pool_table") == (
        "carbon pool table, row 0: header lacks ['c_below', 'c_soil', 'c_dead']; expected columns ['lucode', "
        "'c_above', 'c_below', 'c_soil', 'c_dead'] (any case), got ['lucode', 'c_above']")


@pytest.mark.django_db
def test_verify_page_and_api_give_a_translated_lead_to_the_verifiers_reason(client):
    from ledger.verifier.errors import BundleInvalidError

    invalid = BundleInvalidError("pledges[1].status", "want 'active', got 'released'")
    assert str(invalid) == "pledges[1].status: want 'active', got 'released'"  # the command line's words
    from config.common.problems import translated
    from ledger.bundles.services import verdict_failure_detail

    with translation.override("zh-hans"):
        assert translated(verdict_failure_detail(invalid)) == (
            "数据包在 pledges[1].status 处校验未通过：want 'active', got 'released'")
    with translation.override("en"):
        assert translated(verdict_failure_detail(invalid)) == str(invalid)

    from django.template.loader import render_to_string

    with translation.override("zh-hans"):
        page = render_to_string("ledger/verify.html", {"failure": invalid, "keys": []})
    assert ("数据包在 <code>pledges[1].status</code> 处校验未通过；原因按离线验证工具的原文（英文）列出。" in page
            and "want &#x27;active&#x27;, got &#x27;released&#x27;" in page)

    unusable = problem(client.post("/api/verify/", '{"bundle": {}, "keys": "x"}', content_type="application/json",
                                   **ZH), 422)
    assert (unusable["title"], unusable["detail"]) == ("数据包无法验证", "keys：应为验证公钥字符串组成的数组")


# --- error pages and error problems ---------------------------------------------------------------------------


class Boom(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        raise RuntimeError("boom")


def _page_boom(request):
    raise RuntimeError("boom")


urlpatterns = [path("api/boom/", Boom.as_view()), path("boom/", _page_boom)]
handler404 = "config.problems.not_found"
handler500 = "config.problems.server_error"


@pytest.mark.django_db
def test_a_missing_page_is_a_page_in_the_users_language(client):
    zh = client.get("/no-such-page/", **ZH)
    assert zh.status_code == 404 and zh["Content-Type"].startswith("text/html")
    html = zh.content.decode()
    assert '<html lang="zh-hans">' in html and "<h1>页面不存在</h1>" in html
    assert "<code>/no-such-page/</code> 处没有页面。" in html

    en = client.get("/no-such-page/", **EN).content.decode()
    assert '<html lang="en">' in en and "<h1>Page not found</h1>" in en
    assert "There is no page at <code>/no-such-page/</code>." in en


@pytest.mark.django_db
def test_a_missing_api_resource_stays_problem_json(client):
    zh = problem(client.get("/api/no-such-thing/", **ZH), 404)
    assert (zh["title"], zh["detail"]) == ("未找到", "/api/no-such-thing/ 处没有资源")
    en = problem(client.get("/api/no-such-thing/"), 404)
    assert (en["title"], en["detail"], en["instance"]) == ("Not found", "no resource at /api/no-such-thing/",
                                                           "/api/no-such-thing/")


@pytest.mark.urls("tests.foundation.test_i18n")
def test_a_failure_is_a_plain_page_or_problem_json():
    client = Client(raise_request_exception=False)
    page = client.get("/boom/", **ZH)
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert "<h1>服务器错误</h1>" in page.content.decode()
    assert "<h1>Server error</h1>" in client.get("/boom/", **EN).content.decode()

    api = problem(client.get("/api/boom/", **ZH), 500)
    assert (api["title"], api["detail"]) == ("服务器内部错误", "服务器未能处理此请求，已记录该错误")


# --- figures --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_figures_are_grouped_alike_in_both_languages(language):
    from decimal import Decimal

    with translation.override(language):
        assert grouped(Decimal("1589529"), 2) == "1,589,529.00"
        assert grouped(1589529.004, 2) == "1,589,529.00"
        assert grouped(22812.5, 0) == "22,813"  # rounded half up, as floatformat rounds
        assert grouped(None, 2) == ""


@pytest.mark.django_db
def test_county_page_groups_its_figures_in_both_languages(api_user, tmp_path, settings,
                                                          django_capture_on_commit_callbacks):
    from accounting.methods import pool_table_read
    from accounting.services import accounting_run_create, method_version_create
    from geo.accounts import api_user_create
    from geo.legends import builtin_legend
    from geo.models import Parcel
    from geo.services import parcel_import, raster_ingest
    from tests.pages.conftest import COUNTY, POOL_TABLE_CSV, county_raster, parcels_geojson

    settings.MEDIA_ROOT = tmp_path / "media"
    raster, _ = raster_ingest(source_path=county_raster(tmp_path / "r.tif"), original_name="r.tif", epoch=2020,
                              legend=builtin_legend("clcd"))
    parcel_import(feature_collection=parcels_geojson(), allowed_county=COUNTY)
    method, _ = method_version_create(kind="pool_table",
                                      parameters={"pools": pool_table_read(POOL_TABLE_CSV).as_parameters()})
    with django_capture_on_commit_callbacks(execute=True):
        run = accounting_run_create(method_version=method, raster=raster, parcels=Parcel.objects.all(),
                                    county_code=COUNTY)
    run.refresh_from_db()
    stock_t_c = run.totals["stock_tC"]
    assert stock_t_c > 10_000  # so that the figure has a thousands separator to show
    user, _ = api_user_create(username="bank-viewer", role="bank")
    client = Client()
    client.force_login(user)
    shown = f"{stock_t_c:,.0f} t C"
    for language in (ZH, EN):
        page = client.get(f"/county/{COUNTY}/", **language)
        assert page.status_code == 200
        assert shown in page.content.decode(), language


# --- every message has its Chinese ----------------------------------------------------------------------------

GETTEXT_NAMES = {"gettext", "gettext_lazy", "gettext_noop", "_", "ngettext", "ngettext_lazy", "pgettext",
                 "pgettext_lazy", "npgettext", "npgettext_lazy"}


def _message_ids(call_name: str, strings: list[str]) -> list[str | tuple]:
    """The catalog keys a call needs: msgid, (msgid, 0) for a plural, 'context\\x04msgid' with a context."""
    if call_name.startswith("np"):
        return [(f"{strings[0]}\x04{strings[1]}", 0)]
    if call_name.startswith("p"):
        return [f"{strings[0]}\x04{strings[1]}"]
    if call_name.startswith("n"):
        return [(strings[0], 0)]
    return [strings[0]]


def python_messages(source: str) -> list[str | tuple]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        wanted = 2 if name and name[:2] in ("pg", "np") else 1
        if name in GETTEXT_NAMES and len(strings) >= wanted:
            found.extend(_message_ids(name, strings))
    return found


def template_messages(source: str) -> list[str | tuple]:
    """{% trans %} and {% blocktrans %} messages, through Django's own templatize (what makemessages runs)."""
    from django.utils.translation.template import templatize

    tokens = list(tokenize.generate_tokens(io.StringIO(templatize(source)).readline))
    found = []
    for index, token in enumerate(tokens[:-1]):
        if token.type == tokenize.NAME and token.string in GETTEXT_NAMES and tokens[index + 1].string == "(":
            strings = []
            for following in tokens[index + 2:]:
                if following.string == ")":
                    break
                if following.type == tokenize.STRING:
                    strings.append(ast.literal_eval(following.string))
            found.extend(_message_ids(token.string, strings))
    return found


def all_messages() -> dict[str | tuple, str]:
    """Every message id of geo/, accounting/, ledger/ and config/ (Python and templates) -> where it is."""
    messages = {}
    for package in ("geo", "accounting", "ledger", "config"):
        for file in sorted((ROOT / package).rglob("*")):
            if "migrations" in file.parts or "__pycache__" in file.parts:
                continue
            if file.suffix == ".py":
                found = python_messages(file.read_text(encoding="utf-8"))
            elif file.suffix == ".html":
                found = template_messages(file.read_text(encoding="utf-8"))
            else:
                continue
            for message in found:
                messages.setdefault(message, str(file.relative_to(ROOT)))
    return messages


def test_the_extractor_finds_marked_messages_in_code_and_templates():
    messages = all_messages()
    assert messages["Invalid raster"] == "geo/errors.py"  # a problem title (gettext_noop in a pure core)
    assert messages["no entry %(seq)s: the ledger holds %(tree_size)s entries (seq 0..%(last_seq)s)"] == (
        "ledger/core/errors.py")
    assert messages["Page not found"] == "config/templates/config/404.html"  # {% trans %}
    assert messages[("%(counter)s active pledge", 0)] == "ledger/templates/ledger/pledges.html"  # a plural
    assert len(messages) > 500


def test_every_message_has_a_chinese_translation_in_the_compiled_catalog():
    with CATALOG.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    untranslated = sorted(f"{where}: {message!r}" for message, where in all_messages().items()
                          if not catalog.get(message))
    assert not untranslated, "no Chinese in locale/zh_Hans (append to django.po, then msgfmt):\n" + "\n".join(
        untranslated)
