"""Confidence intervals and paired comparisons from saved per-image predictions.

A leaderboard cell is the mean of a unit's metric over seeds. Its 95% interval comes from a
bootstrap over TEST IMAGES and SEEDS: each replicate resamples the test images (the same
resample for every seed, since all seeds share the test set) and the seeds, recomputes the
metric of each resampled seed and averages. The paired test between two rows uses the SAME
resamples for both and reports the share of replicates in which the challenger is at least
as good as the best row; a row is "tied with the best" when the 95% interval of the
difference contains 0. Everything is seeded, so rerendering is byte-identical.

The per-seed scores come from :mod:`benchmark.scoring` (recomputed from the saved
predictions, never read from the result JSON). Seeds that did not see the same test images
cannot be resampled together: that is an error, not a silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .scoring import UnitScores

N_BOOTSTRAP = 1000


@dataclass
class CellStats:
    mean: float  # in percent
    low: float
    high: float
    seeds: int
    std: float
    method: str  # "bootstrap" or "seeds"
    replicates: np.ndarray | None = None  # bootstrap distribution of the seed mean (percent)


@lru_cache(maxsize=64)
def resamples(n_images: int, n_seeds: int, n: int = N_BOOTSTRAP, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_images, size=(n, n_images)), rng.integers(0, n_seeds, size=(n, n_seeds))


def cell_stats(per_seed: list[UnitScores], key: str) -> CellStats:
    """Mean over seeds of metric ``key`` (percent) with its 95% bootstrap interval over test
    images and seeds; every value recomputed from the seeds' predictions."""
    ids = per_seed[0].image_ids
    for other in per_seed[1:]:
        if len(other.image_ids) != len(ids) or not (other.image_ids == ids).all():
            raise ValueError(
                "the seeds of one cell were tested on different images: they cannot be averaged or resampled together"
            )
    values = np.array([100 * unit.value(key) for unit in per_seed])
    mean = float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")
    std = float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0
    image_draws, seed_draws = resamples(len(ids), len(per_seed))
    scores = [unit.scores[key] for unit in per_seed]
    replicates = np.empty(len(image_draws))
    with np.errstate(all="ignore"):
        for b, (images, seeds) in enumerate(zip(image_draws, seed_draws)):
            draws = [scores[s](images) for s in seeds]
            replicates[b] = np.nanmean(draws) if not np.isnan(draws).all() else np.nan
    replicates *= 100
    if np.isnan(replicates).all():
        return CellStats(mean, float("nan"), float("nan"), len(values), std, "bootstrap", replicates)
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    return CellStats(mean, float(low), float(high), len(values), std, "bootstrap", replicates)


def tied_with_best(challenger: CellStats, best: CellStats) -> bool:
    """Paired bootstrap: is 0 inside the 95% interval of (best - challenger)?"""
    if challenger.replicates is None or best.replicates is None or len(challenger.replicates) != len(best.replicates):
        return challenger.high >= best.low  # overlapping intervals
    diff = best.replicates - challenger.replicates
    low, high = np.nanpercentile(diff, [2.5, 97.5])
    return bool(low <= 0.0 <= high)
