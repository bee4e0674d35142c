"""Carbon methods: pure functions from class areas to carbon stocks, changes, uncertainty and value.

No Django, no settings, no files opened behind the caller's back (the one exception: `tables` reads the IPCC
default tables shipped in accounting/data/). Units are in every name: area_ha, stock_t_c, agb_t_dm_per_ha,
carbon_fraction (t C/t d.m.), co2e_t, *_pct for percents. Carbon is t C (= Mg C) inside; CO2e = t C × 44/12
(`CO2_PER_C`) only at the edge.

How the run engine uses it
--------------------------
    method = carbon_method(kind, parameters)        # validate + normalise + hash once (MethodParameterError)
    result = parcel_carbon(
        method,
        area_ha_by_class={53: 12.5, 54: 3.0},       # from geo.zonal: ellipsoidal ha per land-cover code
        ipcc_category_by_class={53: "forest_land"},  # from the legend; needed by ipcc_tier1 only
        attributes={"volume_m3_per_ha": 120.0},      # parcel attributes; volume_bcef reads volume_m3_per_ha[_by_class]
        alt_area_ha_by_class={...},                 # optional second epoch
        transition_ha={(53, 54): 1.5, ...},         # optional, ha from class a to b; rows/columns must match areas
        years=(2020, 2050),                         # (baseline_year, alt_year); required with the alternate epoch
        valuation=ValuationTerms(Decimal("43"), "USD", discount_rate_pct=Decimal(7), price_change_pct=Decimal(0)),
        uncertainty="approach1",                    # or "approach2" (Monte Carlo) with seed=int, iterations=20000
    )
    totals = parcels_total([result, ...])           # sums; intervals by IPCC Eq 3.2

`result` is a ParcelCarbon: `.baseline` / `.alternate` are CarbonStock (area_ha, area_ha_by_class,
stock_t_c_by_pool over c_above/c_below/c_soil/c_dead, stock_t_c_by_class, stock_t_c, stock_co2e_t, interval:
Interval95 with lower_t_c/upper_t_c); `.change` is a StockChange (change_t_c, annual_change_t_c_per_yr,
annual_change_co2e_t_per_yr, change_t_c_by_transition); `.change_interval`; `.stock_value`, `.alt_stock_value`
and `.npv_of_change` are Money (Decimal amount, currency); `.parameters_used` lists every value used and where it
came from, and `.uses_unconfirmed_defaults` flags defaults not yet checked against the IPCC PDF.

Method kinds and their parameters (declared in `spec.METHOD_SPECS`, described by `method_spec(kind)`):
- "pool_table": InVEST's carbon pool table as rows {lucode, c_above, c_below, c_soil, c_dead} (t C/ha);
  `pool_table_read(csv_text_or_file).as_parameters()` gives the rows, so the hash covers the numbers.
- "ipcc_tier1": IPCC 2006 Tier 1 per land-use category (see `ipcc_tier1`).
- "volume_bcef": V × BCEF × (1 + R) × CF per forest class (see `volume_bcef`).
Every kind takes `uncertainty_pct` (IPCC U per parameter, percent; default 0 written in explicitly).

Errors (accounting.methods.errors, all ValueError): MethodParameterError (with .problems: path → reason),
PoolTableError (row, column), MissingClassError (codes), MissingParameterError (parameter), InconsistentInputError.
"""

from .errors import (
    InconsistentInputError,
    MethodError,
    MethodParameterError,
    MissingClassError,
    MissingParameterError,
    PoolTableError,
)
from .ipcc_tier1 import ParameterUse, ipcc_tier1_terms
from .parcel import CarbonMethod, CarbonStock, CarbonTotals, ParcelCarbon, carbon_method, parcel_carbon, parcels_total
from .pool_table import (
    PoolDensity,
    PoolTable,
    pool_table_from_rows,
    pool_table_read,
    pool_table_stock,
    pool_table_terms,
)
from .spec import (
    IPCC_CATEGORIES,
    METHOD_SPECS,
    canonical_json,
    method_parameters_hash,
    method_spec,
    validate_method_parameters,
)
from .stock_change import StockChange, check_transition_matrix, stock_difference, transition_change_t_c
from .tables import default_tables_sha256
from .terms import Factor, StockTerm, product_uncertainty_pct, sum_half_width, sum_uncertainty_pct
from .uncertainty import (
    Interval95,
    approach1_interval,
    combine_intervals,
    interval_from_samples,
    monte_carlo_totals,
    parcel_seed,
)
from .units import CO2_PER_C, POOLS
from .valuation import (
    Money,
    ValuationTerms,
    discount_sum,
    npv_of_change,
    valuation_constant_per_t_c,
    value_of_stock,
)
from .volume_bcef import volume_bcef_stock_t_c_per_ha, volume_bcef_terms

__all__ = [
    "CO2_PER_C",
    "IPCC_CATEGORIES",
    "METHOD_SPECS",
    "POOLS",
    "CarbonMethod",
    "CarbonStock",
    "CarbonTotals",
    "Factor",
    "InconsistentInputError",
    "Interval95",
    "MethodError",
    "MethodParameterError",
    "MissingClassError",
    "MissingParameterError",
    "Money",
    "ParameterUse",
    "ParcelCarbon",
    "PoolDensity",
    "PoolTable",
    "PoolTableError",
    "StockChange",
    "StockTerm",
    "ValuationTerms",
    "approach1_interval",
    "canonical_json",
    "carbon_method",
    "check_transition_matrix",
    "combine_intervals",
    "default_tables_sha256",
    "discount_sum",
    "interval_from_samples",
    "ipcc_tier1_terms",
    "method_parameters_hash",
    "method_spec",
    "monte_carlo_totals",
    "npv_of_change",
    "parcel_carbon",
    "parcel_seed",
    "parcels_total",
    "pool_table_from_rows",
    "pool_table_read",
    "pool_table_stock",
    "pool_table_terms",
    "product_uncertainty_pct",
    "stock_difference",
    "sum_half_width",
    "sum_uncertainty_pct",
    "transition_change_t_c",
    "validate_method_parameters",
    "valuation_constant_per_t_c",
    "value_of_stock",
    "volume_bcef_stock_t_c_per_ha",
    "volume_bcef_terms",
]
