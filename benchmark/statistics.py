"""Confidence intervals and paired comparisons from saved per-image predictions.

A leaderboard cell is the mean of a unit's metric over seeds. Its 95% interval comes from a
bootstrap over TEST IMAGES and SEEDS: each replicate resamples the test images (the same
resample for every seed, since all seeds share the test set) and the seeds, recomputes the
metric of each resampled seed and averages. The paired test between two rows uses the SAME
resamples for both and reports the share of replicates in which the challenger is at least
as good as the best row; a row is "tied with the best" when the 95% interval of the
difference contains 0. Everything is seeded, so rerendering is byte-identical.

A family provides ``bootstrap_scorer(task, predictions) -> (image_ids, score(indices))``;
families without one fall back to a normal interval over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .families import family_module
from .registry import all_tasks
from .results import Result

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


def _scorers(results: list[Result], folder_of: dict) -> tuple[np.ndarray, list] | None:
    task = all_tasks()[results[0].unit.task]
    module = family_module(task.family)
    if not hasattr(module, "bootstrap_scorer"):
        return None
    ids, scorers = None, []
    for result in results:
        path = folder_of[id(result)] / result.unit.task / (result.predictions_file or "")
        if not result.predictions_file or not path.is_file():
            return None
        image_ids, score = module.bootstrap_scorer(task, pd.read_csv(path))
        order = np.argsort(image_ids, kind="stable")
        if ids is None:
            ids = image_ids[order]
        elif len(ids) != len(image_ids) or not (ids == image_ids[order]).all():
            return None  # seeds saw different test sets: no paired resampling
        scorers.append((order, score))
    return ids, scorers


@lru_cache(maxsize=64)
def resamples(n_images: int, n_seeds: int, n: int = N_BOOTSTRAP, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_images, size=(n, n_images)), rng.integers(0, n_seeds, size=(n, n_seeds))


def cell_stats(results: list[Result], folder_of: dict) -> CellStats:
    values = np.array([100 * r.value for r in results])
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    scorers = _scorers(results, folder_of)
    if scorers is None:
        half = 1.96 * std / np.sqrt(len(values)) if len(values) > 1 else float("nan")
        return CellStats(mean, mean - half, mean + half, len(values), std, "seeds")
    ids, per_seed = scorers
    image_draws, seed_draws = resamples(len(ids), len(per_seed))
    replicates = np.empty(len(image_draws))
    for b, (images, seeds) in enumerate(zip(image_draws, seed_draws)):
        replicates[b] = np.nanmean([per_seed[s][1](per_seed[s][0][images]) for s in seeds])
    replicates *= 100
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    return CellStats(mean, float(low), float(high), len(values), std, "bootstrap", replicates)


def tied_with_best(challenger: CellStats, best: CellStats) -> bool:
    """Paired bootstrap: is 0 inside the 95% interval of (best - challenger)?"""
    if challenger.replicates is None or best.replicates is None or len(challenger.replicates) != len(best.replicates):
        return challenger.high >= best.low  # overlapping intervals
    diff = best.replicates - challenger.replicates
    low, high = np.nanpercentile(diff, [2.5, 97.5])
    return bool(low <= 0.0 <= high)


def result_folders(pairs: list[tuple[Result, Path]]) -> dict:
    return {id(result): folder for result, folder in pairs}
