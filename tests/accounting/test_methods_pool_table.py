"""InVEST carbon pool tables: parsing, refusals, and the Willamette sample against InVEST's documented formula."""

import csv
import io
from decimal import Decimal

import pytest

from accounting.methods import (
    MissingClassError,
    PoolTableError,
    ValuationTerms,
    carbon_method,
    parcel_carbon,
    pool_table_read,
    pool_table_stock,
)
from tests.conftest import shared_path

TABLE = """LUCODE,LULC_Name,C_Above,C_BELOW,c_soil,C_dead
1,Forest,140,70,35,12
2,Coffee,65,40,25,6
5,Open/urban,5,5,15,2
"""


def test_headers_in_any_case_and_extra_columns_ignored():
    table = pool_table_read(TABLE)
    assert [r.lucode for r in table.rows] == [1, 2, 5]
    forest = table.by_lucode()[1]
    assert (forest.c_above_t_c_per_ha, forest.c_below_t_c_per_ha, forest.c_soil_t_c_per_ha,
            forest.c_dead_t_c_per_ha) == (140, 70, 35, 12)


def test_reads_a_file_object_with_bom():
    table = pool_table_read(io.StringIO("\ufeff" + TABLE))
    assert len(table.rows) == 3


def test_stock_per_pool_is_density_times_area():
    # 2 ha of forest + 0.5 ha of coffee: above 2×140 + 0.5×65 = 312.5; below 140 + 20 = 160;
    # soil 70 + 12.5 = 82.5; dead 24 + 3 = 27 (t C/ha × ha = t C)
    stock = pool_table_stock(pool_table_read(TABLE), {1: 2.0, 2: 0.5})
    assert stock == {"c_above": 312.5, "c_below": 160.0, "c_soil": 82.5, "c_dead": 27.0}


def test_class_with_area_missing_from_table_is_named():
    with pytest.raises(MissingClassError) as err:
        pool_table_stock(pool_table_read(TABLE), {1: 1.0, 7: 0.2, 9: 3.0})
    assert err.value.codes == (7, 9)
    assert "[7, 9]" in str(err.value)


def test_class_without_area_may_be_missing():
    assert pool_table_stock(pool_table_read(TABLE), {1: 1.0, 7: 0.0})["c_above"] == 140.0


@pytest.mark.parametrize(
    ("text", "row", "column", "fragment"),
    [
        pytest.param("lucode,c_above,c_below,c_dead\n1,1,1,1\n", 0, None, "c_soil", id="missing-column"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\n1,1,1,1,1\n2,1,abc,1,1\n", 2, "c_below", "'abc'",
                     id="non-numeric"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\n1,1,1,-3,1\n", 1, "c_soil", "negative", id="negative"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\n1,1,1,1,1\n2,1,1,1,1\n1,2,2,2,2\n", 3, "lucode",
                     "repeats row 1", id="duplicate-lucode"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\n1,1,,1,1\n", 1, "c_below", "empty", id="empty-cell"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\nforest,1,1,1,1\n", 1, "lucode", "'forest'",
                     id="non-integer-lucode"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\n1,nan,1,1,1\n", 1, "c_above", "finite", id="nan"),
        pytest.param("lucode,c_above,c_below,c_soil,c_dead\n", None, None, "no rows", id="empty-table"),
    ],
)
def test_malformed_tables_name_row_and_column(text, row, column, fragment):
    with pytest.raises(PoolTableError) as err:
        pool_table_read(text)
    assert err.value.row == row
    assert err.value.column == column
    assert fragment in str(err.value)


# --- InVEST Willamette sample ------------------------------------------------------------------------------------
# Pixel counts per class from ../shared/data/SOURCES.md (GDAL 3.6.2, full resolution); each pixel is 30 m × 30 m
# = 900 m² = 0.09 ha.
PIXEL_HA = 0.09
CURRENT_PX = {
    1: 21992, 2: 1576, 3: 768, 4: 118, 6: 2460, 7: 494, 8: 1601, 11: 9633, 16: 3851, 18: 3799, 20: 3950, 21: 18658,
    24: 16193, 29: 1409, 32: 7534, 33: 6734, 39: 91, 49: 3467, 51: 921, 52: 1856, 53: 95704, 54: 299075, 55: 692,
    56: 82069, 57: 73850, 58: 170324, 59: 67970, 60: 103556, 61: 17559, 62: 2844, 66: 629, 67: 140226, 68: 41229,
    71: 59398, 72: 610, 73: 3524, 74: 557, 75: 8, 76: 680, 78: 82, 79: 6447, 80: 14318, 81: 386, 82: 22685,
    83: 47470, 84: 3652, 85: 96698, 86: 17226, 87: 98374, 88: 9610, 89: 7073, 90: 15323, 91: 3562, 92: 14262,
    93: 16250, 95: 594,
}
FUTURE_PX = {
    1: 49135, 2: 3691, 3: 2870, 4: 1105, 6: 3466, 7: 721, 8: 1659, 11: 9633, 16: 3851, 18: 3799, 20: 3950,
    21: 18658, 24: 16193, 29: 1409, 32: 7534, 33: 6734, 39: 91, 49: 3467, 53: 2844, 54: 300931, 55: 921,
    56: 199260, 57: 82069, 58: 73850, 59: 170324, 60: 68662, 61: 17559, 67: 133895, 68: 40757, 71: 57679, 72: 610,
    73: 3218, 74: 330, 75: 7, 76: 669, 78: 81, 79: 5704, 80: 10199, 81: 341, 82: 18136, 83: 43652, 84: 3387,
    85: 90563, 86: 17226, 87: 98374, 88: 7508, 89: 7073, 90: 14336, 91: 2190, 92: 13827, 93: 16250, 95: 1223,
}


def _invest_expected(csv_path):
    """InVEST's documented computation, written independently with the csv module: per pixel, storage = the sum
    of the four pools (t C/ha) × pixel area (ha); totals are sums over pixels; value of sequestration =
    V × Δc / n × Σ_{t=0}^{n−1} 1/((1 + r/100)^t (1 + c/100)^t)."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = [{k.lower(): v for k, v in row.items()} for row in csv.DictReader(fh)]
    density = {int(r["lucode"]): sum(float(r[p]) for p in ("c_above", "c_below", "c_soil", "c_dead")) for r in rows}
    baseline = sum(n * PIXEL_HA * density[c] for c, n in CURRENT_PX.items())
    future = sum(n * PIXEL_HA * density[c] for c, n in FUTURE_PX.items())
    change = future - baseline
    price, r, c, n = 43.0, 7.0, 0.0, 2050 - 2020
    npv = price * change / n * sum(1 / ((1 + r / 100) ** t * (1 + c / 100) ** t) for t in range(n))
    return baseline, future, change, npv


def test_willamette_reproduces_invest_formula():
    path = shared_path("data", "carbon_pools_willamette.csv")
    baseline, future, change, npv = _invest_expected(path)
    with open(path, newline="", encoding="utf-8") as fh:
        table = pool_table_read(fh)
    method = carbon_method("pool_table", {"pools": table.as_parameters()})
    result = parcel_carbon(
        method,
        area_ha_by_class={c: n * PIXEL_HA for c, n in CURRENT_PX.items()},
        alt_area_ha_by_class={c: n * PIXEL_HA for c, n in FUTURE_PX.items()},
        years=(2020, 2050),
        valuation=ValuationTerms(Decimal("43"), "USD", discount_rate_pct=Decimal("7"), price_change_pct=Decimal("0")),
    )
    assert result.stock_t_c == pytest.approx(baseline, rel=1e-12)
    assert result.alternate.stock_t_c == pytest.approx(future, rel=1e-12)
    assert result.change.change_t_c == pytest.approx(change, rel=1e-9)
    assert result.change.annual_change_t_c_per_yr == pytest.approx(change / 30, rel=1e-9)
    assert result.npv_of_change.currency == "USD"
    assert float(result.npv_of_change.amount) == pytest.approx(npv, rel=1e-9, abs=0.005)
    assert result.stock_value.amount == (Decimal(43) * Decimal(repr(result.stock_t_c))).quantize(Decimal("0.01"))
    # sanity on the data: the scenario ages conifers and builds houses; areas are conserved (valid pixels equal)
    assert sum(CURRENT_PX.values()) == sum(FUTURE_PX.values()) == 1_641_621
    assert result.area_ha == pytest.approx(1_641_621 * PIXEL_HA)
