"""Detection metric: COCO-style 101-point interpolated AP, averaged over IoU thresholds.

Default (medvlp-bench): every test image counts. A prediction on an image without ground
truth is a false positive; a ground-truth box nobody found is a miss. Per IoU threshold the
computation is exactly pycocotools' COCOeval for one category, area range "all" and no
per-image detection cap: detections sorted by score (stable, images in sorted-id order),
greedy matching of each detection to the unmatched ground truth of highest IoU >= threshold,
precision made monotone, sampled at recall 0, 0.01, ..., 1 (precision 0 beyond the reached
recall), averaged. IoU is computed on continuous coordinates (area = w * h, as COCO).

The REFERENCE rule (MGCA's evaluation, ``mgca=True``): only images that have a ground-truth
box AND at least one surviving prediction count, so missed images and false positives on
negative images cost nothing. It is a bug of the reference code, kept only so measured rows
can be set beside published ones: every unit reports both, from the same predictions
(:func:`unit_detection_metrics`: ``map`` under the sound all-images rule, ``map_reference``
under MGCA's), and the leaderboard shows each in its own table.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

IOU_THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (n, 4) and (m, 4) boxes in (x1, y1, x2, y2)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _as_boxes(value) -> np.ndarray:
    return np.asarray(value if value is not None else [], dtype=np.float64).reshape(-1, 4)


def _as_preds(value) -> np.ndarray:
    return np.asarray(value if value is not None else [], dtype=np.float64).reshape(-1, 5)


def match_image(gt_boxes: np.ndarray, preds: np.ndarray, iou_thresholds) -> tuple[np.ndarray, np.ndarray]:
    """One image at every threshold: its predictions' scores in descending order (stable) and
    a (thresholds, predictions) array saying whether each matched a ground-truth box. COCO's
    greedy matching, per threshold: each detection takes the unmatched ground truth of highest
    IoU >= threshold (the last of equal IoUs, as pycocotools' loop does). The IoU matrix is
    computed once and the thresholds are matched together."""
    thresholds = np.minimum(np.atleast_1d(np.asarray(iou_thresholds, dtype=np.float64)), 1 - 1e-10)
    g, p = _as_boxes(gt_boxes), _as_preds(preds)
    matched = np.zeros((len(thresholds), len(p)), dtype=bool)
    if not len(p):
        return np.zeros(0), matched
    p = p[np.argsort(-p[:, 4], kind="mergesort")]
    if len(g):
        ious = box_iou(p[:, :4], g)
        taken = np.zeros((len(thresholds), len(g)), dtype=bool)
        rows = np.arange(len(thresholds))
        last = len(g) - 1
        for d in range(len(p)):
            candidate = ~taken & (ious[d][None, :] >= thresholds[:, None])
            found = candidate.any(axis=1)
            if not found.any():
                continue
            masked = np.where(candidate, ious[d][None, :], -1.0)
            best = last - np.argmax(masked[:, ::-1], axis=1)  # highest IoU; the last one on ties
            taken[rows[found], best[found]] = True
            matched[found, d] = True
    return p[:, 4].copy(), matched


def ap_from_matches(matched: np.ndarray, n_gt: float, weights: np.ndarray | None = None) -> float:
    """101-point interpolated AP of detections already sorted by descending score.
    ``weights``: how many times each detection counts (a bootstrap resample of images)."""
    if n_gt == 0:
        return float("nan")
    if not len(matched):
        return 0.0
    tp = np.asarray(matched, dtype=np.float64)
    w = np.ones_like(tp) if weights is None else np.asarray(weights, dtype=np.float64)
    tp_sum, fp_sum = np.cumsum(tp * w), np.cumsum((1.0 - tp) * w)
    recall = tp_sum / n_gt
    precision = tp_sum / np.maximum(tp_sum + fp_sum, np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(index < len(precision), precision[np.minimum(index, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def average_precision(
    gt: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray], iou_threshold: float, images: list[str] | None = None
) -> float:
    """AP at one IoU threshold. ``gt[image]``: (n, 4) xyxy; ``preds[image]``: (m, 5) xyxy + score.

    ``images``: the images that count (default: every image in ``gt`` or ``preds``).
    Returns NaN when no counted image has ground truth (COCO's -1: AP undefined)."""
    return average_precisions(gt, preds, [iou_threshold], images)[0]


def average_precisions(
    gt: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray], iou_thresholds, images: list[str] | None = None
) -> list[float]:
    """:func:`average_precision` at each threshold, matching every image once."""
    images = sorted(set(gt) | set(preds)) if images is None else sorted(images)
    n_gt = sum(len(_as_boxes(gt.get(image))) for image in images)
    _, matched = sorted_matches(gt, preds, images, iou_thresholds)
    return [ap_from_matches(row, n_gt) for row in matched]


def sorted_matches(
    gt: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray], images: list[str], iou_thresholds
) -> tuple[np.ndarray, np.ndarray]:
    """Every detection of ``images`` (in that order) by descending score, stable: the index of
    its image in ``images`` and the (thresholds, detections) matched array."""
    image_of, scores, matched = (
        [np.zeros(0, dtype=int)],
        [np.zeros(0)],
        [np.zeros((len(iou_thresholds), 0), dtype=bool)],
    )
    for k, image in enumerate(images):
        image_scores, image_matched = match_image(gt.get(image), preds.get(image), iou_thresholds)
        scores.append(image_scores)
        matched.append(image_matched)
        image_of.append(np.full(len(image_scores), k))
    order = np.argsort(-np.concatenate(scores), kind="mergesort")
    return np.concatenate(image_of)[order], np.concatenate(matched, axis=1)[:, order]


class ResampledMAP:
    """mAP of any multiset of ``images``, for the leaderboard's bootstrap; the all-images rule,
    or with ``reference=True`` MGCA's rule (images without ground truth or without a
    prediction weigh nothing, wherever the resample puts them).

    Matching is per image, so it is done once; a resample only re-weights each image's
    detections and ground truth by how often the image was drawn. ``score(arange(n))`` equals
    :func:`detection_metrics`' ``map`` exactly, and a resample equals the mAP of the images
    duplicated under new names (tests/test_det_metrics.py)."""

    def __init__(
        self,
        gt: Mapping[str, np.ndarray],
        preds: Mapping[str, np.ndarray],
        images: list[str],
        iou_thresholds=IOU_THRESHOLDS,
        reference: bool = False,
    ):
        self.images = sorted(images)
        self.n_gt = np.array([len(_as_boxes(gt.get(i))) for i in self.images], dtype=np.float64)
        self.image_of, self.matched = sorted_matches(gt, preds, self.images, iou_thresholds)
        counted = set(counted_images(gt, preds, self.images, mgca=reference))
        self.counts = np.array([float(i in counted) for i in self.images])

    def __call__(self, indices: np.ndarray) -> float:
        """mAP of ``self.images[indices]`` (indices may repeat)."""
        counts = (
            np.bincount(np.asarray(indices, dtype=int), minlength=len(self.images)).astype(np.float64) * self.counts
        )
        weights, n_gt = counts[self.image_of], float(counts @ self.n_gt)
        values = [ap_from_matches(m, n_gt, weights) for m in self.matched]
        return float(np.mean([0.0 if np.isnan(v) else v for v in values]))


def counted_images(
    gt: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray], images: list[str], mgca: bool
) -> list[str]:
    if not mgca:
        return list(images)
    return [i for i in images if len(_as_boxes(gt.get(i))) and len(_as_preds(preds.get(i)))]


def detection_metrics(
    gt: Mapping[str, np.ndarray],
    preds: Mapping[str, np.ndarray],
    images: list[str] | None = None,
    iou_thresholds=IOU_THRESHOLDS,
    mgca: bool = False,
) -> dict:
    """{"map": mean AP over ``iou_thresholds``, "ap@0.40": ..., counts}. ``images``: the test images
    (default: all keys). An undefined AP (no ground truth counted) is reported as 0."""
    images = sorted(set(gt) | set(preds)) if images is None else list(images)
    counted = counted_images(gt, preds, images, mgca)
    per_threshold = dict(
        zip((float(t) for t in iou_thresholds), average_precisions(gt, preds, list(iou_thresholds), counted))
    )
    values = [0.0 if np.isnan(v) else v for v in per_threshold.values()]
    out = {"map": float(np.mean(values))}
    out.update({f"ap@{t:.2f}": (0.0 if np.isnan(v) else v) for t, v in per_threshold.items()})
    out.update(
        {
            "images": len(images),
            "images_counted": len(counted),
            "images_with_gt": sum(1 for i in images if len(_as_boxes(gt.get(i)))),
            "gt_boxes": int(sum(len(_as_boxes(gt.get(i))) for i in counted)),
            "pred_boxes": int(sum(len(_as_preds(preds.get(i))) for i in counted)),
            "rule": "mgca" if mgca else "all_images",
            "iou_thresholds": [float(t) for t in iou_thresholds],
        }
    )
    return out


def unit_detection_metrics(
    gt: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray], images: list[str], iou_thresholds=IOU_THRESHOLDS
) -> dict:
    """What every detection result carries: the sound metrics (``map``, ``ap@...``, counts)
    and, under ``reference``, the same from MGCA's rule, with ``map_reference`` beside ``map``."""
    out = detection_metrics(gt, preds, images, iou_thresholds)
    reference = detection_metrics(gt, preds, images, iou_thresholds, mgca=True)
    out["map_reference"] = reference["map"]
    out["reference"] = {k: v for k, v in reference.items() if k not in ("images", "images_with_gt", "iou_thresholds")}
    return out


def metrics_from_table(table, iou_thresholds=IOU_THRESHOLDS, mgca: bool = False) -> dict:
    """Recompute the metric from a unit's predictions table (rows ``kind`` in image/gt/pred)."""
    images, gt, preds = boxes_from_table(table)
    return detection_metrics(gt, preds, images, iou_thresholds, mgca)


def boxes_from_table(table) -> tuple[list[str], dict, dict]:
    """(test images, ground truth, predictions) of a unit's predictions table."""
    images = table.loc[table["kind"] == "image", "image_id"].astype(str).tolist()
    gt, preds = {}, {}
    for image_id, group in table[table["kind"] == "gt"].groupby("image_id"):
        gt[str(image_id)] = group[["x1", "y1", "x2", "y2"]].to_numpy(float)
    for image_id, group in table[table["kind"] == "pred"].groupby("image_id"):
        preds[str(image_id)] = group[["x1", "y1", "x2", "y2", "score"]].to_numpy(float)
    return images, gt, preds
