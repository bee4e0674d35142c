"""IPCC Tier 1 and volume × BCEF: worked examples, Table 4.4 band edges, and refusals where IPCC gives no value.

Expected numbers are hand calculations from the IPCC tables (values in ../shared/reference/carbon-accounting.md,
Appendix A), written out in each test.
"""

import pytest

from accounting.methods import (
    CO2_PER_C,
    MissingClassError,
    MissingParameterError,
    carbon_method,
    parcel_carbon,
    volume_bcef_stock_t_c_per_ha,
)
from accounting.methods.tables import bcef_t_dm_per_m3, root_to_shoot_ratio


def test_co2_per_c_is_exactly_44_over_12():
    assert CO2_PER_C == 44 / 12
    assert CO2_PER_C != 3.67


# --- volume × BCEF -------------------------------------------------------------------------------------------------

def test_worked_example_volume_bcef_296_758_t_co2_per_ha():
    # 100 m³/ha × 1.4 t/m³ = 140 t d.m./ha; × (1 + 0.23) = 172.2; × 0.47 = 80.934 t C/ha; × 44/12 = 296.758 t CO2/ha
    assert volume_bcef_stock_t_c_per_ha(100, 1.4, 0.23, 0.47) * CO2_PER_C == pytest.approx(296.758, abs=5e-10)
    rounded_constant_t_co2 = 80.934 * 3.67  # 297.02778: what the rounded 3.67 would give
    assert rounded_constant_t_co2 == pytest.approx(297.028, abs=5e-4)


def test_worked_example_through_tables_and_parcel():
    """BCEF 1.4 from Table 4.5 (temperate hardwoods, 41–100 m³/ha, 100 is in that class), R 0.23 from Table 4.4
    (temperate other broadleaf, AGB 140 in 75–150), CF 0.47 (Table 4.3)."""
    method = carbon_method("volume_bcef", {"classes": {"53": {
        "bcef_group": "temperate_hardwoods", "ecological_zone": "temperate_continental_forest",
        "forest_type": "other_broadleaf"}}})
    result = parcel_carbon(method, area_ha_by_class={53: 2.5}, attributes={"volume_m3_per_ha": 100.0})
    # 2.5 ha × 296.758 t CO2/ha = 741.895 t CO2; pools: above 2.5 × 140 × 0.47 = 164.5 t C,
    # below 2.5 × 140 × 0.23 × 0.47 = 37.835 t C
    assert result.stock_co2e_t == pytest.approx(741.895, abs=1e-9)
    assert result.stock_t_c_by_pool["c_above"] == pytest.approx(164.5, abs=1e-9)
    assert result.stock_t_c_by_pool["c_below"] == pytest.approx(37.835, abs=1e-9)
    assert not result.uses_unconfirmed_defaults


def test_volume_by_class_attribute_wins_and_missing_volume_is_refused():
    method = carbon_method("volume_bcef", {"classes": {
        "1": {"bcef_t_dm_per_m3": 0.5, "root_to_shoot": 0.2, "carbon_fraction": 0.5},
        "2": {"bcef_t_dm_per_m3": 0.5, "root_to_shoot": 0.2, "carbon_fraction": 0.5, "volume_m3_per_ha": 10.0}},
        "zero_stock_classes": [9]})
    # class 1: 200 m³/ha × 0.5 × 1.2 × 0.5 = 60 t C/ha; class 2: its own 10 m³/ha → 3 t C/ha; class 9: 0
    result = parcel_carbon(method, area_ha_by_class={1: 1.0, 2: 2.0, 9: 5.0},
                           attributes={"volume_m3_per_ha_by_class": {"1": 200.0}})
    assert result.stock_t_c == pytest.approx(60 + 2 * 3)
    with pytest.raises(MissingParameterError, match="volume_m3_per_ha"):
        parcel_carbon(method, area_ha_by_class={1: 1.0})
    with pytest.raises(MissingClassError) as err:
        parcel_carbon(method, area_ha_by_class={1: 1.0, 4: 1.0}, attributes={"volume_m3_per_ha": 1.0})
    assert err.value.codes == (4,)


@pytest.mark.parametrize(("volume", "bcef"), [(20, 3.0), (20.5, 1.7), (40, 1.7), (100, 1.4), (100.01, 1.05),
                                              (200, 1.05), (200.01, 0.8)])
def test_bcef_growing_stock_class_edges(volume, bcef):
    assert bcef_t_dm_per_m3("temperate_hardwoods", volume, allow_unconfirmed=False).value == bcef


# --- Table 4.4 root-to-shoot bands, exactly at their edges ---------------------------------------------------------
# Rule (the table's wording): '<a' excludes a; 'a–b' includes both ends; in two-band rows '<a' / '>a' the boundary
# value a goes to the upper band.
R_CASES = [
    ("tropical_dry_forest", None, 19.999, 0.56),
    ("tropical_dry_forest", None, 20, 0.28),
    ("subtropical_dry_forest", None, 20, 0.28),
    ("tropical_moist_deciduous_forest", None, 124.999, 0.20),
    ("tropical_moist_deciduous_forest", None, 125, 0.24),
    ("subtropical_humid_forest", None, 125, 0.24),
    ("temperate_oceanic_forest", "conifers", 49.999, 0.40),
    ("temperate_oceanic_forest", "conifers", 50, 0.29),
    ("temperate_continental_forest", "conifers", 150, 0.29),
    ("temperate_continental_forest", "conifers", 150.001, 0.20),
    ("temperate_mountain_systems", "eucalyptus", 50, 0.28),
    ("temperate_mountain_systems", "eucalyptus", 150, 0.28),
    ("temperate_mountain_systems", "eucalyptus", 150.001, 0.20),
    ("temperate_oceanic_forest", "other_broadleaf", 74.999, 0.46),
    ("temperate_oceanic_forest", "other_broadleaf", 75, 0.23),
    ("temperate_oceanic_forest", "other_broadleaf", 150, 0.23),
    ("temperate_oceanic_forest", "other_broadleaf", 150.001, 0.24),
    ("temperate_continental_forest", "quercus", 70.001, 0.30),
    ("boreal_coniferous_forest", None, 74.999, 0.39),
    ("boreal_coniferous_forest", None, 75, 0.24),
    ("tropical_rain_forest", None, 0, 0.37),
    ("tropical_mountain_systems", None, 500, 0.27),
]


@pytest.mark.parametrize(("zone", "forest_type", "agb", "r"), R_CASES, ids=[f"{z}-{t}-{a}" for z, t, a, _ in R_CASES])
def test_root_to_shoot_band_edges(zone, forest_type, agb, r):
    assert root_to_shoot_ratio(zone, forest_type, agb, allow_unconfirmed=False).value == r


def test_quercus_at_70_has_no_ipcc_value():
    with pytest.raises(MissingParameterError, match="no band for AGB = 70"):
        root_to_shoot_ratio("temperate_continental_forest", "quercus", 70, allow_unconfirmed=False)


def test_subtropical_mountain_root_to_shoot_is_refused_not_defaulted():
    method = carbon_method("ipcc_tier1", {"categories": {"forest land": {
        "ecological_zone": "subtropical_mountain_systems", "continent": "africa", "soc": None}}})
    with pytest.raises(MissingParameterError) as err:
        parcel_carbon(method, area_ha_by_class={10: 1.0}, ipcc_category_by_class={10: "Forest land"})
    assert err.value.parameter == "root_to_shoot"
    assert "no estimate (NA)" in str(err.value) and "subtropical_mountain_systems" in str(err.value)
    # supplying R (e.g. from a Tier 2 study) makes it computable: Africa subtropical mountain AGB 50 (Table 4.7);
    # above 50 × 0.47 = 23.5 t C/ha; below 50 × 0.3 × 0.47 = 7.05 t C/ha
    method = carbon_method("ipcc_tier1", {"categories": {"forest_land": {
        "ecological_zone": "subtropical_mountain_systems", "continent": "africa", "root_to_shoot": 0.3, "soc": None}}})
    result = parcel_carbon(method, area_ha_by_class={10: 1.0}, ipcc_category_by_class={10: "forest_land"})
    assert result.stock_t_c == pytest.approx(23.5 + 7.05)


def test_mountain_agb_range_is_refused():
    method = carbon_method("ipcc_tier1", {"categories": {"forest_land": {
        "ecological_zone": "tropical_mountain_systems", "continent": "africa", "soc": None}}})
    with pytest.raises(MissingParameterError, match=r"only a range \[40, 190\]") as err:
        parcel_carbon(method, area_ha_by_class={1: 1.0}, ipcc_category_by_class={1: "forest_land"})
    assert err.value.parameter == "agb_t_dm_per_ha"


# --- Tier 1 stocks -------------------------------------------------------------------------------------------------

def test_tropical_rain_forest_africa():
    method = carbon_method("ipcc_tier1", {"categories": {"forest_land": {
        "ecological_zone": "tropical_rain_forest", "continent": "africa",
        "dead_wood_t_c_per_ha": 4.0, "litter_t_c_per_ha": 1.0, "soc": {"soc_ref_t_c_per_ha": 65.0}}}})
    result = parcel_carbon(method, area_ha_by_class={3: 2.0}, ipcc_category_by_class={3: "forest_land"})
    # AGB 310 t d.m./ha (Table 4.7), R 0.37 (Table 4.4), CF 0.47; 2 ha:
    # above 2 × 310 × 0.47 = 291.4; below 2 × 310 × 0.37 × 0.47 = 107.818; dead 2 × 5 = 10; soil 2 × 65 × 1×1×1 = 130
    assert result.stock_t_c_by_pool == pytest.approx(
        {"c_above": 291.4, "c_below": 107.818, "c_dead": 10.0, "c_soil": 130.0})
    assert result.stock_t_c == pytest.approx(539.218)


def test_grassland_cold_temperate_wet_biomass_6_392_t_c_per_ha():
    method = carbon_method("ipcc_tier1", {"categories": {"grassland": {
        "grassland_climate_zone": "cold_temperate_wet", "soc": None}}})
    result = parcel_carbon(method, area_ha_by_class={30: 1.0}, ipcc_category_by_class={30: "grassland"})
    # Table 6.4: total 13.6, above 2.4 t d.m./ha; 13.6 × 0.47 = 6.392 t C/ha (above 1.128, below 11.2 × 0.47 = 5.264)
    assert result.stock_t_c == pytest.approx(6.392, abs=1e-12)
    assert result.stock_t_c_by_pool["c_above"] == pytest.approx(1.128, abs=1e-12)
    assert result.stock_t_c_by_pool["c_below"] == pytest.approx(5.264, abs=1e-12)


def test_grassland_soil_degradation_worked_example():
    """Warm-temperate moist HAC, moderately degraded: SOC = 88 × 1 × 0.95 × 1 = 83.6 t C/ha;
    ΔSOC = (83.6 − 88) / 20 = −0.22 t C/ha/yr over D = 20 years. SOC_ref and F_MG are unconfirmed defaults."""
    parameters = {
        "allow_unconfirmed_defaults": True,
        "categories": {"grassland": {"agb_t_dm_per_ha": 0.0, "root_to_shoot": 0.0,
                                     "soc": {"climate_zone": "warm_temperate_moist", "soil_type": "hac",
                                             "management": "nominally_managed"}}},
        "classes": {"2": {"soc": {"climate_zone": "warm_temperate_moist", "soil_type": "hac",
                                  "management": "moderately_degraded"}}},
    }
    method = carbon_method("ipcc_tier1", parameters)
    categories = {1: "grassland", 2: "grassland"}
    result = parcel_carbon(method, area_ha_by_class={1: 1.0}, alt_area_ha_by_class={2: 1.0},
                           ipcc_category_by_class=categories, years=(2000, 2020),
                           transition_ha={(1, 2): 1.0})
    assert result.stock_t_c_by_pool["c_soil"] == pytest.approx(88.0)
    assert result.alternate.stock_t_c_by_pool["c_soil"] == pytest.approx(83.6)
    assert result.change.annual_change_t_c_per_yr == pytest.approx(-0.22)
    assert result.change.change_t_c_by_transition == pytest.approx({(1, 2): -4.4})
    assert result.uses_unconfirmed_defaults

    parameters["allow_unconfirmed_defaults"] = False
    with pytest.raises(MissingParameterError, match="unconfirmed") as err:
        parcel_carbon(carbon_method("ipcc_tier1", parameters), area_ha_by_class={1: 1.0},
                      ipcc_category_by_class=categories)
    assert err.value.parameter == "soc_ref_t_c_per_ha"


def test_cropland_without_biomass_or_factors_is_refused():
    method = carbon_method("ipcc_tier1", {"categories": {"cropland": {"soc": {"soc_ref_t_c_per_ha": 50.0}}}})
    with pytest.raises(MissingParameterError) as err:
        parcel_carbon(method, area_ha_by_class={40: 1.0}, ipcc_category_by_class={40: "cropland"})
    assert err.value.parameter == "agb_t_dm_per_ha"
    method = carbon_method("ipcc_tier1", {"categories": {"cropland": {
        "agb_t_dm_per_ha": 5.0, "root_to_shoot": 0.0, "soc": {"soc_ref_t_c_per_ha": 50.0}}}})
    with pytest.raises(MissingParameterError) as err:
        parcel_carbon(method, area_ha_by_class={40: 1.0}, ipcc_category_by_class={40: "cropland"})
    assert err.value.parameter == "soc.f_lu"


def test_soil_must_be_stated_or_explicitly_left_out():
    method = carbon_method("ipcc_tier1", {"categories": {"settlements": {"agb_t_dm_per_ha": 0, "root_to_shoot": 0}}})
    with pytest.raises(MissingParameterError) as err:
        parcel_carbon(method, area_ha_by_class={50: 1.0}, ipcc_category_by_class={50: "settlements"})
    assert err.value.parameter == "soc"


def test_class_without_category_and_category_without_parameters():
    method = carbon_method("ipcc_tier1", {"categories": {"other_land": {
        "agb_t_dm_per_ha": 0, "root_to_shoot": 0, "soc": None}}})
    with pytest.raises(MissingClassError) as err:
        parcel_carbon(method, area_ha_by_class={60: 1.0, 61: 1.0}, ipcc_category_by_class={60: "other_land"})
    assert err.value.codes == (61,)
    with pytest.raises(MissingParameterError, match=r"categories\.wetlands"):
        parcel_carbon(method, area_ha_by_class={60: 1.0}, ipcc_category_by_class={60: "wetlands"})


def test_unconfirmed_agb_needs_opt_in():
    # Asia continental values of Table 4.7 are from memory (only the continental/insular mean is verified)
    stratum = {"ecological_zone": "tropical_rain_forest", "continent": "asia_continental", "soc": None}
    method = carbon_method("ipcc_tier1", {"categories": {"forest_land": stratum}})
    with pytest.raises(MissingParameterError, match="unconfirmed"):
        parcel_carbon(method, area_ha_by_class={1: 1.0}, ipcc_category_by_class={1: "forest_land"})
    method = carbon_method("ipcc_tier1", {"allow_unconfirmed_defaults": True, "categories": {"forest_land": stratum}})
    result = parcel_carbon(method, area_ha_by_class={1: 1.0}, ipcc_category_by_class={1: "forest_land"})
    # 280 × 0.47 + 280 × 0.37 × 0.47 = 131.6 + 48.692
    assert result.stock_t_c == pytest.approx(180.292)
    assert result.uses_unconfirmed_defaults
