"""Method parameters: validation names every bad parameter; the hash is canonical and covers every number."""

import hashlib

import pytest
import rfc8785

from accounting.methods import (
    METHOD_SPECS,
    InconsistentInputError,
    MethodParameterError,
    carbon_method,
    method_parameters_hash,
    method_spec,
    parcel_carbon,
    validate_method_parameters,
)

POOLS = [
    {"lucode": 1, "c_above": 140, "c_below": 70, "c_soil": 35, "c_dead": 12},
    {"lucode": 2, "c_above": 65, "c_below": 40, "c_soil": 25, "c_dead": 6},
]


def test_every_bad_parameter_is_named():
    bad = {"pools": [{"lucode": "x", "c_above": -1, "c_below": "many", "c_soil": 1}], "uncertainty_pct": {"c_abov": 5}}
    with pytest.raises(MethodParameterError) as err:
        validate_method_parameters("pool_table", bad)
    assert set(err.value.problems) == {"pools[0].lucode", "pools[0].c_above", "pools[0].c_below", "pools[0].c_dead",
                                       "uncertainty_pct.c_abov"}
    message = str(err.value)
    for path in err.value.problems:
        assert path in message
    assert "got -1" in message and "'many'" in message


def test_duplicate_lucode_and_unknown_kind():
    with pytest.raises(MethodParameterError) as err:
        validate_method_parameters("pool_table", {"pools": [POOLS[0], dict(POOLS[0])]})
    assert "pools[1].lucode" in err.value.problems
    with pytest.raises(MethodParameterError) as err:
        validate_method_parameters("invest_magic", {})
    assert "kind" in err.value.problems


def test_ipcc_tier1_category_names_and_volume_requirements():
    with pytest.raises(MethodParameterError) as err:
        validate_method_parameters("ipcc_tier1", {"categories": {"forest": {}, "grassland": {"carbon_fraction": 2}}})
    assert set(err.value.problems) == {"categories.forest", "categories.grassland.carbon_fraction"}
    with pytest.raises(MethodParameterError) as err:
        validate_method_parameters("volume_bcef", {"classes": {"5": {"species": "Cunninghamia lanceolata"}},
                                                   "zero_stock_classes": [5]})
    assert set(err.value.problems) == {"classes.5.bcef_t_dm_per_m3", "classes.5.root_to_shoot",
                                       "zero_stock_classes[0]"}


def test_normalised_parameters_write_defaults_in():
    normalised = validate_method_parameters("ipcc_tier1", {"categories": {"Forest land": {"soc": None}}})
    assert normalised == {
        "allow_unconfirmed_defaults": False,
        "categories": {"forest_land": {"soc": None}},
        "classes": {},
        "uncertainty_pct": {k: 0.0 for k in ("area", "agb", "root_to_shoot", "carbon_fraction",
                                             "dead_organic_matter", "soc_ref", "f_lu", "f_mg", "f_i")},
    }


def test_hash_is_sha256_of_canonical_json():
    normalised = validate_method_parameters("pool_table", {"pools": POOLS})
    expected = hashlib.sha256(rfc8785.dumps({"kind": "pool_table", "parameters": normalised})).hexdigest()
    assert method_parameters_hash("pool_table", {"pools": POOLS}) == expected
    assert len(expected) == 64


def test_hash_is_stable_under_key_order_row_order_and_number_spelling():
    reference = method_parameters_hash("pool_table", {"pools": POOLS})
    reordered_keys = {"uncertainty_pct": {}, "pools": [dict(reversed(list(r.items()))) for r in POOLS]}
    assert method_parameters_hash("pool_table", reordered_keys) == reference
    assert method_parameters_hash("pool_table", {"pools": list(reversed(POOLS))}) == reference
    as_floats = [{k: float(v) if k != "lucode" else v for k, v in r.items()} for r in POOLS]
    assert method_parameters_hash("pool_table", {"pools": as_floats}) == reference
    explicit_zero = {"pools": POOLS, "uncertainty_pct": {"area": 0}}
    assert method_parameters_hash("pool_table", explicit_zero) == reference


@pytest.mark.parametrize("field", ["c_above", "c_below", "c_soil", "c_dead", "lucode"])
def test_hash_changes_when_any_number_changes(field):
    reference = method_parameters_hash("pool_table", {"pools": POOLS})
    changed = [dict(POOLS[0]), POOLS[1]]
    changed[0][field] = changed[0][field] + 1 if field != "lucode" else 3
    assert method_parameters_hash("pool_table", {"pools": changed}) != reference


def test_hash_changes_with_uncertainty_and_kind_matters():
    reference = method_parameters_hash("pool_table", {"pools": POOLS})
    assert method_parameters_hash("pool_table", {"pools": POOLS, "uncertainty_pct": {"c_soil": 0.1}}) != reference
    assert carbon_method("pool_table", {"pools": POOLS}).parameters_hash == reference


def test_every_kind_describes_its_parameters_with_units():
    for kind in METHOD_SPECS:
        spec = method_spec(kind)
        assert spec["kind"] == kind
        assert all("description" in p and "type" in p for p in spec["parameters"])
    pools = method_spec("pool_table")["parameters"][0]["values"]["fields"]
    assert {p["name"]: p.get("unit") for p in pools}["c_soil"] == "t C/ha"


def test_parcel_inputs_that_contradict_each_other():
    method = carbon_method("pool_table", {"pools": POOLS})
    with pytest.raises(InconsistentInputError, match="years"):
        parcel_carbon(method, area_ha_by_class={1: 1.0}, alt_area_ha_by_class={1: 1.0})
    with pytest.raises(ValueError, match="after baseline"):
        parcel_carbon(method, area_ha_by_class={1: 1.0}, alt_area_ha_by_class={1: 1.0}, years=(2050, 2020))
    with pytest.raises(ValueError, match=">= 0"):
        parcel_carbon(method, area_ha_by_class={1: -1.0})


def test_an_integer_beyond_what_json_carries_is_refused_not_a_500():
    """Found by schemathesis: a lucode of 509723091000980930560 passed validation and failed hashing (a 500)."""
    from accounting.methods.errors import MethodParameterError
    from accounting.methods.spec import validate_method_parameters

    pools = [{"lucode": 509723091000980930560, "c_above": 1, "c_below": 1, "c_soil": 1, "c_dead": 1}]
    with pytest.raises(MethodParameterError) as refused:
        validate_method_parameters("pool_table", {"pools": pools})
    assert "within ±9007199254740991" in str(refused.value)
