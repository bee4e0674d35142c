"""95 % intervals for stocks and changes: IPCC Approach 1 (error propagation) and Approach 2 (Monte Carlo).

Source: 2006 IPCC Guidelines Vol 1 Ch 3 (Uncertainties), Eq 3.1 (products), Eq 3.2 (sums), section 3.2.3.2
(Approach 2: sample the input distributions, report the 2.5 and 97.5 percentiles).

Conventions
- Every input uncertainty is a percent half-width of the 95 % interval (IPCC's U), stored in `Factor.uncertainty_pct`.
- Approach 1 treats every factor as independent and normal, valid for U below about 30 % (CV < ~0.3); it gives a
  symmetric interval.
- Approach 2 draws each factor as normal with σ = U/100 · value / 1.96. Factors with the same `key` share one
  draw per iteration (they are one parameter), so a default used for many classes is fully correlated, and a
  change alt − base computed from the same draws keeps the correlation between the two epochs. With U above
  ~50 % a normal draw can go negative; supply smaller uncertainties or use Approach 1 with care there.
- The point estimate is always the deterministic one; the Monte Carlo only sets the bounds.
- In a run, each parcel draws from its own seed, `parcel_seed(run seed, parcel key)`: its interval is the same
  whichever other parcels share the run, and in whatever order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .terms import StockTerm, product_uncertainty_pct, sum_half_width
from .units import Z_95, fraction_from_pct

APPROACHES = ("approach1", "approach2")
MONTE_CARLO_ITERATIONS = 20_000


@dataclass(frozen=True, slots=True)
class Interval95:
    """A 95 % interval around an estimate, t C. `approach` is "approach1", "approach2" or "approach1-sum"
    (a total of separately computed intervals, see `combine_intervals`)."""

    estimate_t_c: float
    lower_t_c: float
    upper_t_c: float
    approach: str

    @property
    def minus_pct(self) -> float | None:
        """(estimate − lower) / |estimate| in percent; None when the estimate is 0."""
        return None if self.estimate_t_c == 0 else 100.0 * (self.estimate_t_c - self.lower_t_c) / abs(self.estimate_t_c)

    @property
    def plus_pct(self) -> float | None:
        return None if self.estimate_t_c == 0 else 100.0 * (self.upper_t_c - self.estimate_t_c) / abs(self.estimate_t_c)


def approach1_interval(terms: Sequence[StockTerm]) -> Interval95:
    """Eq 3.1 inside each term (a product), then Eq 3.2 across terms (a sum)."""
    values = [t.stock_t_c for t in terms]
    estimate = sum(values)
    half_width = sum_half_width(values, [t.uncertainty_pct for t in terms])
    return Interval95(estimate, estimate - half_width, estimate + half_width, "approach1")


def approach1_difference(alt: Interval95, base: Interval95) -> Interval95:
    """alt − base by Eq 3.2 with the two epochs independent. This overstates the spread when both use the same
    densities (they are correlated); Approach 2 keeps that correlation."""
    estimate = alt.estimate_t_c - base.estimate_t_c
    half_width = math.hypot(alt.upper_t_c - alt.estimate_t_c, base.upper_t_c - base.estimate_t_c)
    return Interval95(estimate, estimate - half_width, estimate + half_width, "approach1")


def parcel_seed(run_seed: int, parcel_key: str) -> int:
    """The Monte Carlo seed of one parcel in a run: the first 8 bytes, big-endian, of
    sha256(f"{run_seed}:{parcel_key}") in UTF-8, an integer in [0, 2**64).

    A function of the run's seed and the parcel's own key (e.g. "510727/F-1", its county and code) alone, never
    of its position among the run's parcels. Reproduce it with
    ``printf '20260101:510727/F-1' | sha256sum | cut -c1-16`` (hex).
    """
    digest = hashlib.sha256(f"{run_seed}:{parcel_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def monte_carlo_totals(estimates: Sequence[Sequence[StockTerm]], *, seed: int, iterations: int) -> list[np.ndarray]:
    """Sampled totals (t C, shape (iterations,)) for each list of terms, from one shared set of draws.

    Reproducible: the same seed, terms and iterations give the same samples on any machine (NumPy's PCG64
    via `default_rng`, keys drawn in sorted order so that dict order never matters).
    """
    if iterations < 100:
        raise ValueError(f"Monte Carlo needs at least 100 iterations for 2.5/97.5 percentiles, got {iterations}")
    keys = sorted({f.key for terms in estimates for t in terms for f in t.factors})
    index = {k: i for i, k in enumerate(keys)}
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((len(keys), iterations))
    totals = []
    for terms in estimates:
        total = np.zeros(iterations)
        for term in terms:
            sample = np.ones(iterations)
            for f in term.factors:
                sigma_rel = fraction_from_pct(f.uncertainty_pct) / Z_95
                sample *= f.value * (1.0 + sigma_rel * z[index[f.key]])
            total += sample
        totals.append(total)
    return totals


def interval_from_samples(estimate_t_c: float, samples: np.ndarray) -> Interval95:
    """2.5 and 97.5 percentiles of the samples around the deterministic estimate."""
    lower, upper = np.percentile(samples, [2.5, 97.5])
    return Interval95(estimate_t_c, float(lower), float(upper), "approach2")


def combine_intervals(intervals: Sequence[Interval95]) -> Interval95:
    """A sum of separately estimated quantities (parcels of a run) by Eq 3.2, applied to each side separately:
    lower = Σx − √Σ(x − lower)², upper = Σx + √Σ(upper − x)². For symmetric intervals this is exactly Eq 3.2.
    It assumes the parcels' errors are independent; parcels sharing one method's defaults are correlated, so
    this understates the spread of a total (IPCC's caveat for Approach 1)."""
    estimate = sum(i.estimate_t_c for i in intervals)
    below = math.sqrt(sum((i.estimate_t_c - i.lower_t_c) ** 2 for i in intervals))
    above = math.sqrt(sum((i.upper_t_c - i.estimate_t_c) ** 2 for i in intervals))
    return Interval95(estimate, estimate - below, estimate + above, "approach1-sum")


__all__ = [
    "APPROACHES",
    "Interval95",
    "approach1_difference",
    "approach1_interval",
    "combine_intervals",
    "interval_from_samples",
    "monte_carlo_totals",
    "parcel_seed",
    "product_uncertainty_pct",
]
