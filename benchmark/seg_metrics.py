"""Segmentation metrics (docs/protocol.md): Dice of binary masks at probability threshold 0.5.

- ``dice`` (the REFERENCE rule, MGCA's; the paper-layout leaderboard column): per-image Dice,
  averaged over test images. An image whose ground truth is empty scores 1 when the
  prediction is empty too, else 0. On the real test sets most images are negative (SIIM
  1,407 of 1,807; RSNA 4,135 of 5,337), so a head that predicts nothing scores 77.9 / 77.5:
  this number alone can be won by abstaining.
- ``dice_positive`` (the SOUND headline of the second leaderboard table): mean per-image Dice
  over the test images with a non-empty ground truth. Predicting nothing scores 0.
- ``specificity``: share of negative test images whose prediction is empty (read beside
  ``dice_positive``: predicting everything scores 0).
- ``dice_positive_dataset``: dataset-level Dice over the positive images,
  2 * sum(intersection) / (sum(|pred|) + sum(|gt|)).
- ``floors``: what the two trivial heads score on the SAME test images under every rule
  (``predict_nothing``, ``predict_everything``), so a value can be read against them.

All are computed from per-image counts (intersection, predicted, true and total pixel
counts), which are written to the predictions file so the numbers can be recomputed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def mask_counts(probabilities: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image counts of (N, H, W) probabilities vs (N, H, W) 0/1 targets."""
    pred = np.asarray(probabilities) > threshold
    true = np.asarray(targets).astype(bool)
    axes = tuple(range(1, pred.ndim))
    return {
        "intersection": (pred & true).sum(axis=axes).astype(np.int64),
        "pred_pixels": pred.sum(axis=axes).astype(np.int64),
        "true_pixels": true.sum(axis=axes).astype(np.int64),
    }


def per_image_dice(intersection, pred_pixels, true_pixels) -> np.ndarray:
    intersection, pred_pixels, true_pixels = (
        np.asarray(a, dtype=np.float64) for a in (intersection, pred_pixels, true_pixels)
    )
    denominator = pred_pixels + true_pixels
    empty_truth = true_pixels == 0
    dice = np.where(denominator > 0, 2 * intersection / np.maximum(denominator, 1), 1.0)
    return np.where(empty_truth, (pred_pixels == 0).astype(np.float64), dice)


def trivial_floors(true_pixels, pixels) -> dict[str, dict[str, float]]:
    """Every metric of the two trivial heads on test images with ``true_pixels`` positive
    pixels out of ``pixels`` (per image, or one number for all): predicting an empty mask
    everywhere, and predicting the whole image everywhere."""
    true = np.asarray(true_pixels, dtype=np.int64)
    total = np.broadcast_to(np.asarray(pixels, dtype=np.int64), true.shape)
    nothing = {"intersection": np.zeros_like(true), "pred_pixels": np.zeros_like(true), "true_pixels": true}
    everything = {"intersection": true, "pred_pixels": total, "true_pixels": true}
    keys = ("dice", "dice_positive", "specificity")
    return {
        name: {k: core_metrics(counts)[k] for k in keys}
        for name, counts in (("predict_nothing", nothing), ("predict_everything", everything))
    }


def core_metrics(counts: pd.DataFrame | dict) -> dict[str, float]:
    """The rules and counts of :func:`segmentation_metrics`, without the floors."""
    frame = pd.DataFrame({k: np.asarray(counts[k]) for k in ("intersection", "pred_pixels", "true_pixels")})
    dice = per_image_dice(frame["intersection"], frame["pred_pixels"], frame["true_pixels"])
    positive = frame["true_pixels"].to_numpy() > 0
    negative = ~positive
    inter, pred, true = (
        frame.loc[positive, c].to_numpy(dtype=np.float64).sum() for c in ("intersection", "pred_pixels", "true_pixels")
    )
    return {
        "dice": float(dice.mean()) if len(dice) else float("nan"),
        "dice_positive": float(dice[positive].mean()) if positive.any() else float("nan"),
        "specificity": float((frame["pred_pixels"].to_numpy()[negative] == 0).mean())
        if negative.any()
        else float("nan"),
        "dice_positive_dataset": float(2 * inter / (pred + true)) if positive.any() else float("nan"),
        "n_images": int(len(dice)),
        "n_positive": int(positive.sum()),
        "n_negative": int(negative.sum()),
    }


def segmentation_metrics(counts: pd.DataFrame | dict, pixels=None) -> dict:
    """Every metric of a unit from its per-image counts; ``pixels`` (per image, or one number
    for all; default the ``pixels`` column of ``counts``) adds the trivial heads' floors."""
    out = core_metrics(counts)
    if pixels is None and "pixels" in counts:
        pixels = counts["pixels"]
    if pixels is not None:
        out["floors"] = trivial_floors(counts["true_pixels"], pixels)
    return out
