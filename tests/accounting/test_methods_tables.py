"""The shipped default tables: every value carries its source and an unconfirmed flag (STYLE.md point 3)."""

import hashlib

import pytest

from accounting.methods.tables import DATA_DIR, TABLE_FILES, default_tables_sha256, load_table

SOURCE_KEYS = {"publication", "edition", "volume", "chapter", "table", "page"}


def _values(name):
    """Every value record of a table: rows, or the bands inside rows."""
    for row in load_table(name)["rows"]:
        if "bands" in row:
            yield from row["bands"]
        else:
            yield row


@pytest.mark.parametrize("name", sorted(TABLE_FILES))
def test_every_value_has_a_source_and_a_flag(name):
    values = list(_values(name))
    assert values, f"{name} has no values"
    for value in values:
        assert set(value["source"]) >= SOURCE_KEYS, value
        assert value["source"]["publication"] == "2006 IPCC Guidelines for National Greenhouse Gas Inventories"
        assert isinstance(value["unconfirmed"], bool), value
        assert value["unit"]


def test_memory_values_are_flagged_unconfirmed():
    # reference doc: Table 2.3 SOC_REF and the Table 6.2 factors are from memory; Table 4.7 Asia continental/insular
    # split and temperate oceanic N/S America are memory too; Africa and America tropical values are verified
    assert all(v["unconfirmed"] for v in _values("soc_ref"))
    assert all(v["unconfirmed"] for v in _values("grassland_soc_factors"))
    agb = {(r["ecological_zone"], r["continent"]): r for r in load_table("forest_agb")["rows"]
           if r["stand_age_class"] is None}
    assert agb[("tropical_rain_forest", "asia_continental")]["unconfirmed"]
    assert agb[("temperate_oceanic_forest", "north_america")]["unconfirmed"]
    assert not agb[("tropical_rain_forest", "africa")]["unconfirmed"]
    assert agb[("tropical_rain_forest", "africa")]["value"] == 310


def test_subtropical_mountain_root_to_shoot_is_na_in_the_data():
    rows = [r for r in load_table("root_to_shoot")["rows"] if r["ecological_zone"] == "subtropical_mountain_systems"]
    assert rows == [{"ecological_zone": "subtropical_mountain_systems", "forest_type": None, "bands": []}]


def test_default_tables_hash_covers_every_file():
    digest = hashlib.sha256()
    for name in sorted(TABLE_FILES.values()):
        data = (DATA_DIR / name).read_bytes()
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    assert default_tables_sha256() == digest.hexdigest()
    assert len(TABLE_FILES) == len(list(DATA_DIR.glob("*.json")))
