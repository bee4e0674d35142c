"""Land-cover legends: what each class code means and which IPCC land-use category it falls in.

Pure data and parsing; no Django. The carbon methods read the IPCC category (IPCC 2006 Guidelines, Vol. 4,
Ch. 3, section 3.2: forest land, cropland, grassland, wetlands, settlements, other land).
"""

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

from geo.errors import LegendError, TranslatableMessage, gettext_noop
from geo.jsontext import JSONTextError, json_loads

__all__ = ["BUILTIN_LEGENDS", "IPCC_CATEGORIES", "LEGEND_FILE_MAX_BYTES", "Legend", "LegendClass", "LegendError",
           "builtin_legend", "legend_from_file", "legend_from_json", "legend_from_snapshot", "legend_from_table",
           "legend_from_upload"]

# A legend has a line per class: a few hundred bytes each, and rarely more than a hundred classes.
LEGEND_FILE_MAX_BYTES = 1024**2

FOREST_LAND = "forest_land"
CROPLAND = "cropland"
GRASSLAND = "grassland"
WETLANDS = "wetlands"
SETTLEMENTS = "settlements"
OTHER_LAND = "other_land"
IPCC_CATEGORIES = (FOREST_LAND, CROPLAND, GRASSLAND, WETLANDS, SETTLEMENTS, OTHER_LAND)


@dataclass(frozen=True, slots=True)
class LegendClass:
    code: int
    name: str
    ipcc_category: str


@dataclass(frozen=True, slots=True)
class Legend:
    name: str
    classes: Mapping[int, LegendClass]
    source: str = ""

    def missing_codes(self, codes) -> list[int]:
        """The codes in `codes` that this legend does not define, sorted."""
        return sorted(int(code) for code in codes if int(code) not in self.classes)

    def ipcc_category_by_class(self) -> dict[int, str]:
        return {code: cls.ipcc_category for code, cls in self.classes.items()}

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "classes": [
                {"code": c.code, "name": c.name, "ipcc_category": c.ipcc_category}
                for c in sorted(self.classes.values(), key=lambda c: c.code)
            ],
        }


def _legend(name: str, source: str, rows: list[tuple[int, str, str]]) -> Legend:
    return Legend(name=name, source=source, classes={code: LegendClass(code, label, cat) for code, label, cat in rows})


# Shrubland that does not meet a forest definition is reported as grassland (IPCC 2006 Vol. 4, 3.2.1.3);
# a county whose forest definition includes shrubland (灌木林地) uploads a custom legend instead.
BUILTIN_LEGENDS: dict[str, Legend] = {
    legend.name: legend
    for legend in (
        _legend("esa-worldcover", "ESA WorldCover 10 m v100/v200 product user manual, legend table", [
            (10, "Tree cover", FOREST_LAND),
            (20, "Shrubland", GRASSLAND),
            (30, "Grassland", GRASSLAND),
            (40, "Cropland", CROPLAND),
            (50, "Built-up", SETTLEMENTS),
            (60, "Bare / sparse vegetation", OTHER_LAND),
            (70, "Snow and ice", OTHER_LAND),
            (80, "Permanent water bodies", WETLANDS),
            (90, "Herbaceous wetland", WETLANDS),
            (95, "Mangroves", FOREST_LAND),
            (100, "Moss and lichen", GRASSLAND),
        ]),
        _legend("clcd", "CLCD, the 30 m annual China Land Cover Dataset (Yang and Huang, 2021)", [
            (1, "Cropland", CROPLAND),
            (2, "Forest", FOREST_LAND),
            (3, "Shrub", GRASSLAND),
            (4, "Grassland", GRASSLAND),
            (5, "Water", WETLANDS),
            (6, "Snow / ice", OTHER_LAND),
            (7, "Barren", OTHER_LAND),
            (8, "Impervious", SETTLEMENTS),
            (9, "Wetland", WETLANDS),
        ]),
        _legend("nrcan-lc2015", "Natural Resources Canada, 2015 Land Cover of Canada (30 m), class legend", [
            (1, "Temperate or sub-polar needleleaf forest", FOREST_LAND),
            (2, "Sub-polar taiga needleleaf forest", FOREST_LAND),
            (5, "Temperate or sub-polar broadleaf deciduous forest", FOREST_LAND),
            (6, "Mixed forest", FOREST_LAND),
            (8, "Temperate or sub-polar shrubland", GRASSLAND),
            (10, "Temperate or sub-polar grassland", GRASSLAND),
            (11, "Sub-polar or polar shrubland-lichen-moss", GRASSLAND),
            (12, "Sub-polar or polar grassland-lichen-moss", GRASSLAND),
            (13, "Sub-polar or polar barren-lichen-moss", OTHER_LAND),
            (14, "Wetland", WETLANDS),
            (15, "Cropland", CROPLAND),
            (16, "Barren lands", OTHER_LAND),
            (17, "Urban", SETTLEMENTS),
            (18, "Water", WETLANDS),
            (19, "Snow and ice", OTHER_LAND),
        ]),
        _legend("ipcc-6", "IPCC 2006 Guidelines Vol. 4 Ch. 3: the six land-use categories", [
            (1, "Forest land", FOREST_LAND),
            (2, "Cropland", CROPLAND),
            (3, "Grassland", GRASSLAND),
            (4, "Wetlands", WETLANDS),
            (5, "Settlements", SETTLEMENTS),
            (6, "Other land", OTHER_LAND),
        ]),
    )
}


def builtin_legend(name: str) -> Legend:
    try:
        return BUILTIN_LEGENDS[name]
    except KeyError:
        raise LegendError(gettext_noop("unknown legend %(legend)s; built in: %(builtin)s, or upload a custom legend "
                                       "(JSON, or a CSV table with lucode, name, ipcc_category)"),
                          legend=repr(name), builtin=", ".join(sorted(BUILTIN_LEGENDS)), extensions={}) from None


def _category(raw: str, where: str) -> str:
    value = (raw or "").strip().lower().replace(" ", "_").replace("-", "_")
    if value not in IPCC_CATEGORIES:
        raise LegendError(gettext_noop("%(where)s: ipcc_category must be one of %(categories)s; got %(got)s"),
                          where=where, categories=", ".join(IPCC_CATEGORIES), got=repr(raw), extensions={})
    return value


def _code(raw, where: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise LegendError(gettext_noop("%(where)s: class code must be an integer; got %(got)s"), where=where,
                          got=repr(raw), extensions={}) from None
    return value


def _build(name: str, rows: list[tuple[int, str, str]], source: str) -> Legend:
    seen: dict[int, LegendClass] = {}
    for code, label, category in rows:
        if code in seen:
            raise LegendError(gettext_noop("legend %(legend)s defines class %(code)s twice"), legend=repr(name),
                              code=code, extensions={})
        seen[code] = LegendClass(code, label, category)
    if not seen:
        raise LegendError(gettext_noop("legend %(legend)s defines no classes"), legend=repr(name), extensions={})
    return Legend(name=name, classes=seen, source=source)


def legend_from_json(text: str, *, name: str = "custom") -> Legend:
    """Parse {"name": ..., "classes": [{"code": 1, "name": "...", "ipcc_category": "forest_land"}, ...]}."""
    try:
        data = json_loads(text)  # a depth limit whatever the recursion limit (geo.jsontext)
    except JSONTextError as exc:
        raise LegendError(gettext_noop("legend is not valid JSON: %(reason)s"), reason=exc.message,
                          extensions={}) from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise LegendError(gettext_noop('legend JSON must be an object with a "classes" list'))
    rows = []
    for index, item in enumerate(data["classes"]):
        where = f"classes[{index}]"
        if not isinstance(item, dict):
            raise LegendError(gettext_noop("%(where)s must be an object with code, name and ipcc_category"),
                              where=where, extensions={})
        rows.append((_code(item.get("code"), where), str(item.get("name", "")), _category(item.get("ipcc_category"),
                                                                                            where)))
    return _build(str(data.get("name") or name), rows, str(data.get("source", "")))


def legend_from_table(text: str, *, name: str = "custom") -> Legend:
    """Parse an InVEST-style CSV table: `lucode`, a name column (`name` or `lulc_name`) and `ipcc_category`.

    Headers are matched without regard to case, as InVEST does. A line the csv module cannot read (a field over its
    131,072-character limit) is a LegendError naming the line.
    """
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _table_legend(reader, name)
    except csv.Error as exc:
        raise LegendError(gettext_noop("legend table line %(line)s cannot be read: %(reason)s"),
                          line=reader.line_num + 1, reason=str(exc), extensions={}) from None


def _table_legend(reader: csv.DictReader, name: str) -> Legend:
    if reader.fieldnames is None:
        raise LegendError(gettext_noop("legend table is empty"))
    headers = {h.strip().lower(): h for h in reader.fieldnames if h}
    if "lucode" not in headers:
        raise LegendError(gettext_noop("legend table needs a 'lucode' column; found %(found)s"),
                          found=", ".join(reader.fieldnames), extensions={})
    if "ipcc_category" not in headers:
        raise LegendError(gettext_noop("legend table needs an 'ipcc_category' column (forest_land, cropland, "
                                       "grassland, wetlands, settlements or other_land) for every class"))
    name_header = headers.get("name") or headers.get("lulc_name")
    rows = []
    for line, row in enumerate(reader, start=2):
        where = TranslatableMessage(gettext_noop("line %(line)s"), line=line)
        rows.append((_code(row[headers["lucode"]], where), (row.get(name_header) or "").strip() if name_header else "",
                     _category(row[headers["ipcc_category"]], where)))
    return _build(name, rows, "")


def legend_from_upload(text: str, *, name: str = "custom") -> Legend:
    """A custom legend as JSON (starts with '{') or as a CSV table. Its name (the JSON's "name", else `name`) may
    not be a built-in legend's: a raster's legend is known by its name."""
    legend = legend_from_json(text, name=name) if text.lstrip().startswith("{") else legend_from_table(text, name=name)
    if legend.name in BUILTIN_LEGENDS:
        raise LegendError(gettext_noop("a custom legend may not take the name of the built-in legend %(legend)s; "
                                       "give it another name"), legend=repr(legend.name), field="legend",
                          extensions={})
    return legend


def legend_from_file(data, *, name: str = "custom") -> Legend:
    """A custom legend from a file's bytes, or from a binary file object (an upload): at most
    LEGEND_FILE_MAX_BYTES of UTF-8 text (a byte-order mark is allowed), then as `legend_from_upload`."""
    if not isinstance(data, bytes | bytearray):
        data = data.read(LEGEND_FILE_MAX_BYTES + 1)
    if len(data) > LEGEND_FILE_MAX_BYTES:
        raise LegendError(gettext_noop("the legend file is larger than %(limit_bytes)s bytes"),
                          limit_bytes=LEGEND_FILE_MAX_BYTES, field="legend_file")
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LegendError(gettext_noop("the legend file is not UTF-8 text: byte %(position)s (0x%(byte)s) cannot be "
                                       "read"), position=exc.start, byte=f"{exc.object[exc.start]:02x}",
                          field="legend_file", extensions={}) from None
    if "\x00" in text:  # csv reads it, and no database text column stores it
        raise LegendError(gettext_noop("the legend file holds a NUL character (U+0000) at character %(position)s"),
                          position=text.index("\x00"), field="legend_file")
    return legend_from_upload(text, name=name)


def legend_from_snapshot(data: dict) -> Legend:
    """Rebuild a legend from `Legend.to_json()` output (as stored beside a raster)."""
    return legend_from_json(json.dumps(data), name=data.get("name", "custom"))
