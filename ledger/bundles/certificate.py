"""The one-page pledge certificate (PDF) of a bundle, for people. No Django: a bundle dict in, PDF bytes out.

    pdf = certificate_pdf(bundle, bundle_sha256=digest, verify_url="https://registry.example/api/verify/")

A4 portrait: the asset code, holder, rights type, area, a map of the parcel (its GeoJSON drawn in a local
equirectangular projection with a scale bar), carbon stock and value with their 95% intervals and the method,
pledge status, the checkpoint's origin, size and root, the anchor where there is one, and a QR code carrying the
bundle's sha256 and the verify URL (`certificate_qr_payload`). Labels are bilingual; Chinese is set in the Adobe
CID font STSong-Light, which PDF readers supply, so no font file ships with us.
"""

import base64
import io
import math

import segno
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from ledger.core import replay

CJK_FONT = "STSong-Light"
LATIN_FONT, LATIN_BOLD, MONO_FONT = "Helvetica", "Helvetica-Bold", "Courier"
QR_PREFIX = "TANHUI-BUNDLE/1"
METRES_PER_DEGREE = 111_320.0  # length of one degree of latitude (and of longitude at the equator), approx.
MM = 72 / 25.4  # PDF points per millimetre
INK = Color(0.12, 0.20, 0.16)
FOREST = Color(0.18, 0.45, 0.25)
FOREST_FILL = Color(0.78, 0.90, 0.78)
GREY = Color(0.45, 0.45, 0.45)
RULE = Color(0.75, 0.80, 0.76)

RIGHTS_TYPES_ZH = {"forest_land_ownership": "林地所有权", "forest_land_use": "林地使用权",
                   "forest_tree_ownership": "林木所有权", "forest_tree_use": "林木使用权",
                   "grassland_contract": "草原承包经营权"}
ASSET_STATUS_ZH = {replay.REGISTERED: "已登记", replay.CONFIRMED: "已确权", replay.RETIRED: "已注销"}
PLEDGE_STATUS_ZH = {replay.ACTIVE: "有效", replay.RELEASED: "已解除", replay.ENFORCED: "已处置"}
CO2_PER_C = 44 / 12  # t CO2 per t C (molar masses); only for display, the figures come from the bundle

_fonts_registered = []


def _register_fonts() -> None:
    if not _fonts_registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _fonts_registered.append(CJK_FONT)


def certificate_qr_payload(*, asset_code: str, bundle_sha256: str, verify_url: str) -> str:
    """The QR code's text: `TANHUI-BUNDLE/1 <asset code> sha256:<64 hex> <verify URL>`."""
    return f"{QR_PREFIX} {asset_code} sha256:{bundle_sha256} {verify_url}"


def _polygons(geometry: dict) -> list[list[list[tuple[float, float]]]]:
    """[[ring, ...], ...] of (lon, lat) for a GeoJSON Polygon or MultiPolygon (empty for anything else)."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates") or []
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else []
    return [[[(float(x), float(y)) for x, y, *_ in ring] for ring in polygon] for polygon in polygons]


def _nice_length_m(limit_m: float) -> float:
    """The largest 1, 2 or 5 × 10^k metres not above `limit_m` (for a scale bar)."""
    if limit_m <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(limit_m))
    return max(step * power for step in (1, 2, 5) if step * power <= limit_m)


def _draw_map(pdf: canvas.Canvas, geometry: dict, x: float, y: float, width: float, height: float) -> None:
    pdf.setStrokeColor(RULE)
    pdf.setLineWidth(0.6)
    pdf.rect(x, y, width, height)
    polygons = _polygons(geometry or {})
    points = [p for polygon in polygons for ring in polygon for p in ring]
    if not points:
        pdf.setFont(LATIN_FONT, 9)
        pdf.drawCentredString(x + width / 2, y + height / 2, "no geometry")
        return
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    lat0 = (min(lats) + max(lats)) / 2
    squeeze = math.cos(math.radians(lat0))  # local equirectangular: x = lon × cos(lat0), y = lat, in degrees
    span_x = max((max(lons) - min(lons)) * squeeze, 1e-9)
    span_y = max(max(lats) - min(lats), 1e-9)
    margin = 10 * MM
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)  # points per degree
    origin_x = x + width / 2 - span_x * scale / 2
    origin_y = y + height / 2 - span_y * scale / 2

    def project(lon: float, lat: float) -> tuple[float, float]:
        return origin_x + (lon - min(lons)) * squeeze * scale, origin_y + (lat - min(lats)) * scale

    pdf.setStrokeColor(FOREST)
    pdf.setFillColor(FOREST_FILL)
    pdf.setLineWidth(1.2)
    for polygon in polygons:
        path = pdf.beginPath()
        for ring in polygon:
            for number, (lon, lat) in enumerate(ring):
                px, py = project(lon, lat)
                path.moveTo(px, py) if number == 0 else path.lineTo(px, py)
            path.close()
        pdf.drawPath(path, stroke=1, fill=1, fillMode=0)  # even-odd: holes stay empty

    # scale bar: metres per point at lat0 along a meridian; a round length of at most a third of the frame
    metres_per_point = METRES_PER_DEGREE / scale
    bar_m = _nice_length_m(width / 3 * metres_per_point)
    bar_pt = bar_m / metres_per_point
    bx, by = x + 4 * MM, y + 4 * MM
    pdf.setStrokeColor(INK)
    pdf.setLineWidth(1.5)
    pdf.line(bx, by, bx + bar_pt, by)
    pdf.line(bx, by - 1.5, bx, by + 1.5)
    pdf.line(bx + bar_pt, by - 1.5, bx + bar_pt, by + 1.5)
    pdf.setFillColor(INK)
    pdf.setFont(LATIN_FONT, 7)
    pdf.drawString(bx, by + 3, f"{bar_m / 1000:g} km" if bar_m >= 1000 else f"{bar_m:g} m")
    # north arrow
    nx, ny = x + width - 7 * MM, y + height - 13 * MM
    path = pdf.beginPath()
    path.moveTo(nx, ny + 8 * MM)
    path.lineTo(nx - 2 * MM, ny)
    path.lineTo(nx + 2 * MM, ny)
    path.close()
    pdf.drawPath(path, stroke=0, fill=1)
    pdf.drawCentredString(nx, ny - 3.5 * MM, "N")
    pdf.setFillColor(GREY)
    pdf.setFont(LATIN_FONT, 6)
    pdf.drawString(x + 2 * MM, y + height - 4 * MM, f"{min(lons):.4f}-{max(lons):.4f}E  "
                                                     f"{min(lats):.4f}-{max(lats):.4f}N  WGS84")


def _label(pdf: canvas.Canvas, x: float, y: float, zh: str, en: str) -> None:
    pdf.setFillColor(GREY)
    pdf.setFont(CJK_FONT, 8.5)
    pdf.drawString(x, y, zh)
    pdf.setFont(LATIN_FONT, 7)
    pdf.drawString(x, y - 9, en)


def _runs(text: str) -> list[tuple[str, bool]]:
    """Split `text` into runs of (text, is_cjk) so that Latin is set in Helvetica and Chinese in STSong."""
    runs: list[tuple[str, bool]] = []
    for char in text:
        cjk = ord(char) > 0x2E7F
        if runs and runs[-1][1] == cjk:
            runs[-1] = (runs[-1][0] + char, cjk)
        else:
            runs.append((char, cjk))
    return runs


def _mixed(pdf: canvas.Canvas, x: float, y: float, text: str, size: float) -> None:
    for run, cjk in _runs(text):
        font = CJK_FONT if cjk else LATIN_FONT
        pdf.setFont(font, size)
        pdf.drawString(x, y, run)
        x += pdfmetrics.stringWidth(run, font, size)


def _value(pdf: canvas.Canvas, x: float, y: float, lines: list[tuple[str, str]]) -> None:
    """Draw (text, style) lines, style "mono" for hashes; Chinese and Latin runs get their own fonts."""
    pdf.setFillColor(INK)
    for number, (text, style) in enumerate(lines):
        if style == "mono":
            pdf.setFont(MONO_FONT, 7.5)
            pdf.drawString(x, y - number * 11.5, text)
        else:
            _mixed(pdf, x, y - number * 11.5, text, 9.5)


def _fmt(amount: str) -> str:
    """'1234567.80' -> '1,234,567.80' (decimal strings stay exact: no float)."""
    whole, _, fraction = amount.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = whole.lstrip("-")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return sign + ",".join(groups) + (f".{fraction}" if fraction else "")


def _figures(bundle: dict) -> dict[str, list[tuple[str, str]]]:
    asset = bundle["asset"]
    holder = bundle["parties"].get(str(asset["holder"]), {})
    valuation = asset.get("valuation")
    rows = {
        "holder": [(holder.get("name", f"party {asset['holder']}"), "cjk"),
                   (f"USCC {holder['uscc']}" if holder.get("uscc") else f"party {asset['holder']}", "latin")],
        "rights": [(RIGHTS_TYPES_ZH.get(asset["rights_type"], asset["rights_type"]), "cjk"),
                   (asset["rights_type"].replace("_", " "), "latin")],
        "area": [(f"{_fmt(asset['parcel']['area_ha'])} ha", "latin"),
                 (f"parcel {asset['parcel']['code']}, geodesic (WGS84)", "latin")],
        "status": [(f"{ASSET_STATUS_ZH.get(asset['status'], asset['status'])}  {asset['status']}", "cjk")],
    }
    if valuation is None:
        rows["stock"] = [("未估值  not valued", "cjk")]
        rows["value"] = [("-", "latin")]
        rows["method"] = [("-", "latin")]
    else:
        low, high = valuation["stock_ci95_tC"]
        price = valuation.get("price_per_tCO2e") or valuation.get("price_per_tC")
        per = "t CO2e" if "price_per_tCO2e" in valuation else "t C"
        rows["stock"] = [(f"{_fmt(valuation['stock_tC'])} t C  =  {_fmt(valuation['stock_tCO2e'])} t CO2e", "latin"),
                         (f"95% interval {_fmt(low)} - {_fmt(high)} t C", "latin")]
        rows["value"] = [(f"{_fmt(valuation['value']['amount'])} {valuation['value']['currency']}", "latin"),
                         (f"95% lower bound {_fmt(valuation['value_ci95_low']['amount'])} "
                          f"{valuation['value_ci95_low']['currency']}", "latin"),
                         (f"at {price['amount']} {price['currency']} per {per}", "latin")]
        method = bundle.get("method") or {}
        rows["method"] = [(f"{method.get('kind', 'method')} sha256 {valuation['method_sha256'][:24]}...", "mono"),
                          (f"rasters {', '.join(h[:16] + '...' for h in valuation['input_raster_sha256'][:2])}",
                           "mono")]
    active = [p for p in bundle["pledges"] if p["status"] == replay.ACTIVE]
    pledges = []
    if not active:
        pledges.append(("无有效质押  no active pledge", "cjk"))
    for p in active[:3]:
        pledgee = bundle["parties"].get(str(p["pledgee"]), {}).get("name", f"party {p['pledgee']}")
        pledges.append((f"有效 active: {pledgee}", "cjk"))
        pledges.append((f"  {_fmt(p['amount']['amount'])} {p['amount']['currency']}, {p['term_months']} months, "
                        f"LTV limit {p['ltv_limit_pct']}%", "latin"))
    closed = [p for p in bundle["pledges"] if p["status"] != replay.ACTIVE]
    if closed:
        pledges.append((f"past pledges: {len(closed)} ("
                        + ", ".join(f"{p['id']} {p['status']}" for p in closed[:4]) + ")", "latin"))
    rows["pledges"] = pledges
    return rows


def certificate_pdf(bundle: dict, *, bundle_sha256: str, verify_url: str) -> bytes:
    """A one-page A4 PDF certificate of `bundle` (see the module docstring)."""
    _register_fonts()
    asset = bundle["asset"]
    width, height = A4
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"Pledge certificate {asset['code']}")
    pdf.setAuthor("Tanhui carbon-sink registry")
    pdf.setSubject(f"bundle sha256 {bundle_sha256}")
    left, right = 18 * MM, width - 18 * MM

    # header band
    pdf.setFillColor(FOREST)
    pdf.rect(0, height - 34 * MM, width, 34 * MM, stroke=0, fill=1)
    pdf.setFillColor(white)
    pdf.setFont(CJK_FONT, 19)
    pdf.drawString(left, height - 15 * MM, "碳汇资产登记与质押证明")
    pdf.setFont(LATIN_FONT, 11)
    pdf.drawString(left, height - 22 * MM, "Carbon-sink asset: registration and pledge certificate")
    pdf.setFont(LATIN_BOLD, 15)
    pdf.drawRightString(right, height - 15 * MM, asset["code"])
    pdf.setFont(LATIN_FONT, 8)
    checkpoint = bundle["checkpoint"]
    pdf.drawRightString(right, height - 22 * MM, f"as of ledger checkpoint {checkpoint['tree_size']} "
                                                 f"({checkpoint.get('created_at', '')[:19].replace('T', ' ')} UTC)")
    pdf.drawRightString(right, height - 28 * MM, f"county {asset['county']}  ·  year {asset['year']}  ·  "
                                                 f"serial {asset['sequence']}")

    # left column: the facts; right column: the map
    rows = _figures(bundle)
    labels = [("holder", "权利人", "Holder"), ("rights", "权利类型", "Rights type"), ("area", "面积", "Area"),
              ("status", "资产状态", "Asset status"), ("stock", "碳储量", "Carbon stock"),
              ("value", "估值", "Value"), ("method", "核算方法", "Method and inputs"),
              ("pledges", "质押状态", "Pledge status")]
    top = height - 46 * MM
    y = top
    value_x = left + 24 * MM
    for key, zh, en in labels:
        _label(pdf, left, y, zh, en)
        _value(pdf, value_x, y, rows[key])
        y -= max(2, len(rows[key])) * 11.5 + 9
        pdf.setStrokeColor(RULE)
        pdf.setLineWidth(0.4)
        pdf.line(left, y + 5, left + 112 * MM, y + 5)
    map_x, map_w = left + 116 * MM, right - (left + 116 * MM)
    _draw_map(pdf, bundle.get("parcel_geometry") or {}, map_x, top - 58 * MM, map_w, 66 * MM)
    _label(pdf, map_x, top - 62 * MM, "地块图", "Parcel map")

    # the ledger box
    box_top = min(y, top - 80 * MM) - 4 * MM
    box_h = 62 * MM
    pdf.setStrokeColor(FOREST)
    pdf.setLineWidth(0.8)
    pdf.rect(left, box_top - box_h, right - left, box_h)
    _label(pdf, left + 4 * MM, box_top - 7 * MM, "账本检查点", "Ledger checkpoint (C2SP signed note)")
    root_hex = base64.b64decode(checkpoint["root_hash"]).hex()
    origin = checkpoint["note"].split("\n", 1)[0]
    anchor = bundle.get("anchor")
    anchor_text = ("not anchored on chain yet" if anchor is None else
                   f"chain {anchor['chain_id']}, block {anchor.get('block_number')}, {anchor['status']}")
    lines = [(f"origin {origin}", "latin"), (f"tree size {checkpoint['tree_size']}", "latin"),
             (f"root {root_hex[:32]}", "mono"), (f"     {root_hex[32:]}", "mono"),
             (f"anchor: {anchor_text}", "latin")]
    if anchor is not None:
        lines.append((f"tx {anchor['tx_hash'][:34]}...", "mono"))
    lines += [(f"entries proven: {len(bundle['entries'])}", "latin"),
              (f"bundle sha256 {bundle_sha256[:32]}", "mono"), (f"              {bundle_sha256[32:]}", "mono")]
    _value(pdf, left + 4 * MM, box_top - 20 * MM, lines)

    qr_text = certificate_qr_payload(asset_code=asset["code"], bundle_sha256=bundle_sha256, verify_url=verify_url)
    qr = segno.make(qr_text, error="m", micro=False)
    png = io.BytesIO()
    qr.save(png, kind="png", scale=6, border=2, dark="black", light="white")
    png.seek(0)
    qr_size = box_h - 10 * MM
    pdf.drawImage(ImageReader(png), right - 4 * MM - qr_size, box_top - box_h + 4 * MM, qr_size, qr_size)
    pdf.setFillColor(GREY)
    pdf.setFont(LATIN_FONT, 6.5)
    pdf.drawCentredString(right - 4 * MM - qr_size / 2, box_top - 4 * MM, "QR: bundle sha256 + verify URL")

    # how to verify
    foot = box_top - box_h - 9 * MM
    _label(pdf, left, foot, "如何核验", "How to verify")
    _value(pdf, value_x, foot, [
        ("1. Download the bundle: GET /api/assets/" + asset["code"] + f"/bundle/?tree_size={checkpoint['tree_size']}",
         "latin"),
        ("2. Check its sha256 against the QR code, then run, with the registry key you trust:", "latin"),
        ("   python -m ledger.verifier bundle.json --key '<name+keyid+base64>'", "mono"),
        (f"   or POST it to {verify_url}", "latin"),
        ("This page summarises the bundle; the signed bundle, not this page, is the record.", "latin"),
    ])
    pdf.setFillColor(black)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
