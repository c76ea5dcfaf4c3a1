"""Does a result say what its predictions say? The checks behind validation and the leaderboard.

A result JSON is a claim; the per-image predictions beside it are the evidence. Before a
result is shown or accepted, :func:`checked_scores` recomputes its scores from the
predictions (:mod:`benchmark.scoring`) and refuses, naming the file, when:

- the predictions file is missing or unreadable;
- an image id appears twice, or the ids are not the test ids the result says it was tested
  on (their sha256, recorded at run time from the split manifest), or, on the paper suite,
  not the test ids the committed manifest lists;
- the targets in the predictions are not the labels the harness derives: where the project
  commits reference targets for the test set (:mod:`benchmark.reference_targets`; paper RSNA
  and SIIM, the standard demo suite) every image's targets must equal them, and a
  segmentation file may not give a negative image ground-truth pixels;
- the headline value in the JSON differs from the value recomputed from the predictions.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .results import Result
from .scoring import UnitScores, unit_scores
from .splits import ids_hash

VALUE_TOLERANCE = 1e-6  # |JSON value - recomputed value| allowed (float round-off only)


class ResultCheckError(ValueError):
    """A result that cannot be trusted; the message names the file and the problem."""


def predictions_path(result: Result, folder: Path) -> Path:
    """``folder`` is the suite's results folder (``<output>`` or ``submissions/X/results/<suite>``)."""
    return Path(folder) / result.unit.task / (result.predictions_file or f"{result.unit.name}.predictions.csv.gz")


def tested_ids(task, table: pd.DataFrame) -> list[str]:
    if task.family == "detection":
        table = table[table["kind"] == "image"]
    return table["image_id"].astype(str).tolist()


@lru_cache(maxsize=16)
def paper_test_ids_hash(dataset: str) -> str | None:
    """Hash of the test ids a committed manifest lists (None when the manifest leaves the
    official test partition implicit, as CheXpert's does, or there is no committed one)."""
    from .splits import read_manifest
    from .suites import REPO_MANIFESTS

    path = REPO_MANIFESTS / f"{dataset}.csv.gz"
    if not path.is_file():
        return None
    ids = read_manifest(path, dataset).ids("test")
    return ids_hash(ids) if ids else None


_CHECKED: dict[tuple, UnitScores] = {}  # validation and the leaderboard check each unit once per process


def checked_scores(task, result: Result, folder: Path) -> UnitScores:
    """The unit's scores, after the checks above (memoised on the result's content and the
    predictions file's size and mtime, so validating and then rendering reads it once)."""
    path = predictions_path(result, folder)
    stat = path.stat() if path.is_file() else None
    key = (str(path), stat and (stat.st_size, stat.st_mtime_ns), task.id, result.model_dump_json())
    if key not in _CHECKED:
        _CHECKED[key] = _checked_scores(task, result, folder)
    return _CHECKED[key]


def check_targets(task, result: Result, table: pd.DataFrame, path: Path, ids: list[str]) -> None:
    from . import reference_targets as rt

    if task.family == "segmentation" and {"true_pixels", f"target:{task.label_column}"} <= set(table.columns):
        negative_with_mask = table[(table[f"target:{task.label_column}"] == 0) & (table["true_pixels"] > 0)]
        if len(negative_with_mask):
            raise ResultCheckError(
                f"{path}: {len(negative_with_mask)} image(s) labelled negative have ground-truth mask pixels "
                f"(e.g. {negative_with_mask['image_id'].iloc[0]}); targets rewritten?"
            )
    if not rt.has_targets(task):
        return
    expected = rt.reference_targets(task, result.suite)
    if expected is None:
        return
    expected_ids = sorted(set(expected["image_id"]))
    if ids_hash(expected_ids) != ids_hash(sorted(ids)):
        if (
            result.suite == "paper"
        ):  # the test ids were checked against the manifest above; a reference on other ids is stale
            raise ResultCheckError(
                f"{path}: the committed reference targets {rt.reference_path(result.suite, task)} list other test ids"
            )
        return  # a demo suite generated with other parameters (tests use a smaller one): no reference for it
    try:
        found = rt.predictions_targets(task, table)
    except KeyError as missing:
        raise ResultCheckError(f"{path}: lacks the target column(s) {missing}") from None
    bad = rt.differences(task, found, expected)
    if bad:
        first = bad[0]
        raise ResultCheckError(
            f"{path}: the targets of {len(bad)} of {len(expected_ids)} test images differ from the labels "
            f"the harness derives ({rt.reference_path(result.suite, task).name} in "
            f"benchmark/data/reference_targets/{result.suite}); e.g. {first}: "
            f"the file says {rt.describe(task, found, first)}, the labels say {rt.describe(task, expected, first)}"
        )


def _checked_scores(task, result: Result, folder: Path) -> UnitScores:
    json_path = Path(folder) / result.unit.task / f"{result.unit.name}.json"
    path = predictions_path(result, folder)
    if not path.is_file():
        raise ResultCheckError(
            f"{json_path}: its predictions file {path.name} is missing, so its numbers cannot be checked or resampled"
        )
    try:
        table = pd.read_csv(path, dtype={"image_id": str})
    except Exception as error:  # truncated gzip, not a CSV, ...
        raise ResultCheckError(f"{path}: unreadable predictions file ({type(error).__name__}: {error})") from None
    ids = tested_ids(task, table)
    duplicated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if duplicated:
        raise ResultCheckError(f"{path}: image ids appear more than once ({len(duplicated)}, e.g. {duplicated[:3]})")
    recorded = result.data.get("test_ids_sha256")
    if recorded and result.flags.get("limit") is None and ids_hash(ids) != recorded:
        raise ResultCheckError(
            f"{path}: its {len(ids)} image ids are not the test images the result records "
            f"(test_ids_sha256 {recorded[:12]}...; ids renamed, dropped or added)"
        )
    expected = paper_test_ids_hash(result.dataset) if result.suite == "paper" else None
    if expected and result.flags.get("limit") is None and ids_hash(ids) != expected:
        raise ResultCheckError(
            f"{path}: its {len(ids)} image ids are not the paper suite's {result.dataset} test images "
            f"(the committed manifest lists them; sha256 {expected[:12]}...)"
        )
    if result.flags.get("limit") is None:
        check_targets(task, result, table, path, ids)
    size = result.hyperparameters.get("input_size")
    scores = unit_scores(task, table, pixels=size * size if size else None)
    headline = result.metric if result.metric in scores.scores else task.metric
    if headline not in scores.scores:
        raise ResultCheckError(f"{json_path}: its metric {result.metric!r} cannot be recomputed from {path.name}")
    recomputed = scores.value(headline)
    same = abs(recomputed - result.value) <= VALUE_TOLERANCE or (np.isnan(recomputed) and np.isnan(result.value))
    if not same:
        raise ResultCheckError(
            f"{json_path}: its {headline} {result.value:.6f} disagrees with {recomputed:.6f} "
            f"recomputed from {path.name}"
        )
    return scores
