"""Every leaderboard number, recomputed from a unit's saved per-image predictions.

The leaderboard never trusts the metric values written in a result's JSON: it recomputes
each from the predictions file beside it, with the same metric code the unit used, and can
resample the test images for its bootstrap. This module holds that recomputation for every
family and imports no training code (no torch, no OpenMMLab).

:func:`unit_scores` returns ``{metric key: Score}``; a :class:`Score` is a function of an
index array into :attr:`UnitScores.image_ids` (sorted test ids; indices may repeat), so
``score(arange(n))`` is the full-test-set value and ``score(resample)`` a bootstrap replicate.

Keys per family (values as fractions in [0, 1]):

- classification and zero-shot classification: ``auc`` (macro) and, for multi-class tasks,
  ``accuracy``;
- segmentation and zero-shot grounding: ``dice`` (the reference rule), ``dice_positive``,
  ``specificity`` (:mod:`benchmark.seg_metrics`);
- detection: ``map`` (all test images) and ``map_reference`` (MGCA's rule)
  (:mod:`benchmark.det_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .metrics import fast_auc
from .seg_metrics import per_image_dice, trivial_floors

Score = Callable[[np.ndarray], float]

# the metric each table ranks on: the reference rule (the paper's layout) and the sound one
REFERENCE_KEY = {"segmentation": "dice", "detection": "map_reference"}
SOUND_KEY = {"segmentation": "dice_positive", "detection": "map"}


def reference_key(task) -> str:
    return REFERENCE_KEY.get(task.family, task.metric)


def sound_key(task) -> str:
    return SOUND_KEY.get(task.family, task.metric)


@dataclass
class UnitScores:
    image_ids: np.ndarray  # sorted test image ids
    scores: dict[str, Score]
    floors: dict[str, dict[str, float]] | None = None  # segmentation: the trivial heads on these images
    targets_sha256: str = ""  # the ground truth the predictions were scored against (same test set, same digest)

    def value(self, key: str) -> float:
        return self.scores[key](np.arange(len(self.image_ids)))


def _classification(predictions: pd.DataFrame) -> dict[str, Score]:
    targets = predictions[[c for c in predictions.columns if c.startswith("target:")]].to_numpy()
    probs = predictions[[c for c in predictions.columns if c.startswith("prob:")]].to_numpy(dtype=np.float64)
    multiclass = targets.shape[1] == 1 and probs.shape[1] > 1
    scores: dict[str, Score] = {}
    if multiclass:
        labels = targets[:, 0].astype(np.int64)
        correct = (probs.argmax(axis=1) == labels).astype(np.float64)
        scores["accuracy"] = lambda idx: float(correct[idx].mean())
        onehot = np.eye(probs.shape[1], dtype=np.int64)[labels]
    else:
        onehot = targets

    def auc(idx: np.ndarray) -> float:
        values = [fast_auc(onehot[idx, c], probs[idx, c]) for c in range(probs.shape[1])]
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    scores["auc"] = auc
    return scores


def _masks(predictions: pd.DataFrame) -> dict[str, Score]:
    if {"intersection", "pred_pixels", "true_pixels"} <= set(predictions.columns):
        dice = per_image_dice(predictions["intersection"], predictions["pred_pixels"], predictions["true_pixels"])
        positive = predictions["true_pixels"].to_numpy() > 0
        empty_prediction = predictions["pred_pixels"].to_numpy() == 0
    else:  # zero-shot grounding saves the per-image Dice only
        dice = predictions["dice"].to_numpy(dtype=np.float64)
        positive = np.ones(len(dice), dtype=bool)
        empty_prediction = np.zeros(len(dice), dtype=bool)

    def share(values: np.ndarray, among: np.ndarray) -> Score:
        def score(idx: np.ndarray) -> float:
            weight = among[idx]
            return float(values[idx][weight].mean()) if weight.any() else float("nan")

        return score

    return {
        "dice": lambda idx: float(dice[idx].mean()),
        "dice_positive": share(dice, positive),
        "specificity": share(empty_prediction.astype(np.float64), ~positive),
    }


def targets_digest(task, predictions: pd.DataFrame) -> str:
    """sha256 of the ground truth a predictions table holds (ids and targets, canonical order):
    every unit tested on the same images with the same labels has the same digest."""
    import hashlib

    if task.family == "detection":
        gt = predictions[predictions["kind"].isin(["image", "gt"])][["image_id", "kind", "x1", "y1", "x2", "y2"]]
        canonical = gt.assign(image_id=gt["image_id"].astype(str)).sort_values(
            ["image_id", "kind", "x1", "y1", "x2", "y2"], kind="stable"
        )
    else:
        columns = ["image_id"] + [c for c in predictions.columns if c.startswith("target:") or c == "true_pixels"]
        canonical = (
            predictions[columns]
            .assign(image_id=predictions["image_id"].astype(str))
            .sort_values("image_id", kind="stable")
        )
    text = canonical.to_csv(index=False, lineterminator="\n", float_format="%.6g")
    return hashlib.sha256(text.encode()).hexdigest()


def unit_scores(task, predictions: pd.DataFrame, pixels: int | None = None) -> UnitScores:
    """The scores of one unit from its predictions table. ``pixels``: pixels per test image
    for segmentation results written before the table carried a ``pixels`` column."""
    if task.family == "detection":
        from .det_metrics import ResampledMAP, boxes_from_table

        images, gt, preds = boxes_from_table(predictions)
        thresholds = task.recipe.iou_thresholds
        sound = ResampledMAP(gt, preds, images, thresholds)
        reference = ResampledMAP(gt, preds, images, thresholds, reference=True)
        return UnitScores(
            np.array(sound.images, dtype=object),
            {"map": sound, "map_reference": reference},
            targets_sha256=targets_digest(task, predictions),
        )
    table = (
        predictions.assign(image_id=predictions["image_id"].astype(str))
        .sort_values("image_id", kind="stable")
        .reset_index(drop=True)
    )
    ids = table["image_id"].to_numpy(dtype=object)
    if task.family == "segmentation" or getattr(task, "mode", None) == "grounding":
        floors = None
        if "true_pixels" in table.columns:
            per_image = table["pixels"].to_numpy() if "pixels" in table.columns else pixels
            floors = trivial_floors(table["true_pixels"], per_image) if per_image is not None else None
        return UnitScores(ids, _masks(table), floors, targets_digest(task, table))
    return UnitScores(ids, _classification(table), targets_sha256=targets_digest(task, table))
