"""Segmentation metrics (docs/protocol.md): Dice of binary masks at probability threshold 0.5.

- ``dice`` (headline): per-image Dice, averaged over test images. An image whose ground
  truth is empty scores 1 when the prediction is empty too, else 0.
- ``dice_positive_dataset``: dataset-level Dice over the images with a non-empty ground truth
  only, 2 * sum(intersection) / (sum(|pred|) + sum(|gt|)).

Both are computed from per-image counts (intersection, predicted and true pixel counts),
which are written to the predictions file so the numbers can be recomputed.
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
    intersection, pred_pixels, true_pixels = (np.asarray(a, dtype=np.float64) for a in (intersection, pred_pixels, true_pixels))
    denominator = pred_pixels + true_pixels
    empty_truth = true_pixels == 0
    dice = np.where(denominator > 0, 2 * intersection / np.maximum(denominator, 1), 1.0)
    return np.where(empty_truth, (pred_pixels == 0).astype(np.float64), dice)


def segmentation_metrics(counts: pd.DataFrame | dict) -> dict[str, float]:
    frame = pd.DataFrame(counts)
    dice = per_image_dice(frame["intersection"], frame["pred_pixels"], frame["true_pixels"])
    positive = frame["true_pixels"].to_numpy() > 0
    inter, pred, true = (frame.loc[positive, c].to_numpy(dtype=np.float64).sum() for c in ("intersection", "pred_pixels", "true_pixels"))
    return {
        "dice": float(dice.mean()) if len(dice) else float("nan"),
        "dice_positive_dataset": float(2 * inter / (pred + true)) if positive.any() else float("nan"),
        "dice_positive_mean": float(dice[positive].mean()) if positive.any() else float("nan"),
        "dice_negative_mean": float(dice[~positive].mean()) if (~positive).any() else float("nan"),
        "n_images": int(len(dice)),
        "n_positive": int(positive.sum()),
    }
