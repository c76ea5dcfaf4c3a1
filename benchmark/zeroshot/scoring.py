"""Zero-shot scores and metrics.

Classification (CheXzero): per class, p = exp(s+) / (exp(s+) + exp(s-)) with s+/s- the cosine
similarities of the image embedding with the positive / negative prompt embedding (a softmax
over the pair). F1 and accuracy use one threshold per class, the one maximising F1 on the
VALIDATION split (``--zeroshot-threshold-on-test``: on the test split, as earlier papers did).

Grounding: each similarity map is min-max normalised per image to [0, 1]; a pixel is
predicted positive when its value exceeds the threshold t (one of 0.01..0.99) that maximises
the mean Dice over validation positives. Dice and IoU are per image, averaged over the
positive test images. Pointing game: share of images whose map maximum lies inside the mask.
Per-image counts at every threshold come from sorted values (no (N, T, H, W) tensors).
"""

from __future__ import annotations

import numpy as np
import torch


def pair_probabilities(image: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> np.ndarray:
    """(N, D) image embeddings, (C, D) positive and negative prompt embeddings -> (N, C)."""
    s_pos, s_neg = image @ positive.T, image @ negative.T
    return torch.softmax(torch.stack([s_pos, s_neg]), dim=0)[0].double().cpu().numpy()


def best_f1_threshold(targets: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (predict positive when score >= t) maximising F1 (halfway between the
    lowest score predicted positive and the next lower one); 0.5 if undefined."""
    targets = np.asarray(targets).astype(bool)
    if targets.sum() == 0 or targets.sum() == len(targets):
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], targets[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # thresholds between distinct scores only
    f1 = np.where(last, 2 * tp / (k + targets.sum()), -1.0)
    best = int(np.argmax(f1))
    # halfway to the next lower score: the cut does not sit on a validation image's score
    return float((s[best] + s[best + 1]) / 2) if best + 1 < len(s) else float(s[best])


def threshold_metrics(targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, class_names) -> dict:
    out = {"f1_per_class": {}, "accuracy_per_class": {}, "threshold_per_class": {}}
    for c, name in enumerate(class_names):
        y, pred = targets[:, c].astype(bool), scores[:, c] >= thresholds[c]
        tp, fp, fn = int((y & pred).sum()), int((~y & pred).sum()), int((y & ~pred).sum())
        out["f1_per_class"][name] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
        out["accuracy_per_class"][name] = float((y == pred).mean()) if len(y) else float("nan")
        out["threshold_per_class"][name] = float(thresholds[c])
    f1 = [v for v in out["f1_per_class"].values() if not np.isnan(v)]
    out["f1"] = float(np.mean(f1)) if f1 else float("nan")
    out["accuracy"] = float(np.nanmean(list(out["accuracy_per_class"].values()))) if class_names else float("nan")
    return out


# ---------------------------------------------------------------------------- grounding
def threshold_grid(n: int = 99) -> np.ndarray:
    return np.linspace(0, 1, n + 2)[1:-1]


def normalise_map(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def map_counts(sim: np.ndarray, mask: np.ndarray, grid: np.ndarray) -> dict:
    """Counts of one (H, W) similarity map vs its mask at every threshold of ``grid`` (pixels > t)."""
    values = normalise_map(sim.astype(np.float64)).ravel()
    inside = mask.ravel().astype(bool)
    all_sorted, in_sorted = np.sort(values), np.sort(values[inside])
    pred = len(values) - np.searchsorted(all_sorted, grid, side="right")
    inter = len(in_sorted) - np.searchsorted(in_sorted, grid, side="right")
    return {
        "pred": pred.astype(np.int64),
        "inter": inter.astype(np.int64),
        "true": int(inside.sum()),
        "hit": bool(inside[int(np.argmax(values))]) if inside.any() else False,
    }


def dice_iou(inter, pred, true) -> tuple[np.ndarray, np.ndarray]:
    inter, pred, true = (np.asarray(a, dtype=np.float64) for a in (inter, pred, true))
    union = pred + true - inter
    dice = np.where(pred + true > 0, 2 * inter / np.maximum(pred + true, 1), 1.0)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return dice, iou


def choose_map_threshold(counts: list[dict], grid: np.ndarray) -> tuple[float, int]:
    """(threshold, its index) maximising the mean Dice of ``counts``; 0.5 when there are none."""
    if not counts:
        k = int(np.argmin(np.abs(grid - 0.5)))
        return float(grid[k]), k
    inter = np.stack([c["inter"] for c in counts])
    pred = np.stack([c["pred"] for c in counts])
    true = np.array([c["true"] for c in counts])[:, None]
    dice, _ = dice_iou(inter, pred, true)
    k = int(np.argmax(dice.mean(0)))
    return float(grid[k]), k
