"""Unit constants, each named once. Carbon is t C (= Mg C) inside; CO2e appears only at the edge."""

from __future__ import annotations

from decimal import Decimal

# Molar masses: CO2 44.0095 g/mol over C 12.011 g/mol is rounded by IPCC to 44/12 exactly (never 3.67: that is
# 0.09 % high). t C × 44/12 = t CO2.
CO2_PER_C = 44 / 12
CO2_PER_C_DECIMAL = Decimal(44) / Decimal(12)

# Two-sided 95 % interval of a normal distribution: half-width = 1.959964 σ (IPCC 2006 Vol 1 Ch 3 uses 1.96).
Z_95 = 1.959963984540054

POOLS = ("c_above", "c_below", "c_soil", "c_dead")
"""The four InVEST pools, t C/ha densities or t C stocks: above-ground biomass, below-ground biomass,
soil organic carbon, dead organic matter (dead wood + litter)."""


def fraction_from_pct(value_pct: float) -> float:
    """A percent as a fraction: 7 % → 0.07. Percents enter only through names ending in `_pct`."""
    return value_pct / 100.0
