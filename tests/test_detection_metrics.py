"""Object-CXR parsing and the detection metric (vs pycocotools, oracles, MGCA rule)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from benchmark.datasets.object_cxr import ObjectCXR, parse_annotation
from benchmark.det_metrics import IOU_THRESHOLDS, ResampledMAP, average_precision, detection_metrics, metrics_from_table

# ------------------------------------------------------------------ Object-CXR parsing
TRAIN_CSV = """image_name,annotation
00001.jpg,0 10 20 50 60
00002.jpg,
00003.jpg,1 30 40 70 90;2 5 5 25 2 40 18 12 30 3 12
00004.jpg,0 80 70 20 10;1 100 120 140 150;2 60 60 90 55 75 95
"""
DEV_CSV = """image_name,annotation
08001.jpg,
08002.jpg,2 1 1 9 1 5 7
"""


def write_object_cxr(root):
    folder = root / "object-CXR"
    for sub in ("train", "dev"):
        (folder / sub).mkdir(parents=True)
    (folder / "train.csv").write_text(TRAIN_CSV)
    (folder / "dev.csv").write_text(DEV_CSV)
    return folder


def test_object_cxr_annotation_types_become_tight_boxes():
    # rectangle: two corners, in either order
    assert parse_annotation("0 10 20 50 60") == [(10, 20, 40, 40)]
    assert parse_annotation("0 80 70 20 10") == [(20, 10, 60, 60)]
    # ellipse: given by its bounding points
    assert parse_annotation("1 30 40 70 90") == [(30, 40, 40, 50)]
    # polygon: the box of its extreme points
    assert parse_annotation("2 5 5 25 2 40 18 12 30 3 12") == [(3, 2, 37, 28)]
    assert parse_annotation("") == [] and parse_annotation(float("nan")) == []
    assert len(parse_annotation("0 1 1 2 2;1 3 3 4 4;2 0 0 1 0 1 1")) == 3
    with pytest.raises(ValueError):
        parse_annotation("3 1 1 2 2")


def test_object_cxr_adapter_reads_the_official_layout(tmp_path):
    folder = write_object_cxr(tmp_path)
    records = ObjectCXR(folder).records.set_index("image_id")
    assert list(records.index) == ["00001", "00002", "00003", "00004", "08001", "08002"]
    assert records.loc["00002", "boxes"] == [] and records.loc["00002", "has_object"] == 0
    assert records.loc["00003", "boxes"] == [(30, 40, 40, 50), (3, 2, 37, 28)]
    assert records.loc["00004", "boxes"] == [(20, 10, 60, 60), (100, 120, 40, 30), (60, 55, 30, 40)]
    assert records.loc["08002", "source_split"] == "test" and records.loc["00001", "source_split"] == "train"
    assert records.loc["08002", "path"].endswith("object-CXR/dev/08002.jpg")


def test_object_cxr_missing_data_message_shows_the_layout(tmp_path):
    from benchmark.data_roots import DataRoots
    from benchmark.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="dev.csv"):
        ObjectCXR.locate(DataRoots(tmp_path, {}, "test"))


# ------------------------------------------------------------------ metric vs pycocotools
def coco_map(gt: dict, preds: dict, images: list[str], thresholds=IOU_THRESHOLDS) -> tuple[float, list[float]]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {image: k + 1 for k, image in enumerate(sorted(images))}
    annotations, results, n = [], [], 0
    for image, boxes in gt.items():
        for x1, y1, x2, y2 in np.asarray(boxes, float).reshape(-1, 4):
            n += 1
            annotations.append(
                {
                    "id": n,
                    "image_id": ids[image],
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    for image, boxes in preds.items():
        for x1, y1, x2, y2, s in np.asarray(boxes, float).reshape(-1, 5):
            results.append({"image_id": ids[image], "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i} for i in ids.values()],
            "annotations": annotations,
            "categories": [{"id": 1}],
        }
        coco.createIndex()
        dt = coco.loadRes(results) if results else COCO()
        evaluator = COCOeval(coco, dt, "bbox")
        evaluator.params.iouThrs = np.asarray(thresholds, dtype=float)
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluator.params.maxDets = [10_000]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, 0, 0, 0]  # (T, R)
    per_threshold = [float(p[p > -1].mean()) if (p > -1).any() else float("nan") for p in precision]
    return float(np.mean(per_threshold)), per_threshold


def random_case(rng: np.random.Generator, n_images: int = 12, tied: bool = False):
    """``tied``: scores rounded to one decimal, so ties across and within images are common."""
    gt, preds = {}, {}
    for k in range(n_images):
        image = f"img{k:03d}"
        n_gt = int(rng.integers(0, 4))
        boxes = []
        for _ in range(n_gt):
            x, y = rng.uniform(0, 200, 2)
            w, h = rng.uniform(10, 80, 2)
            boxes.append([x, y, x + w, y + h])
        gt[image] = np.asarray(boxes).reshape(-1, 4)
        found = []
        for box in boxes:  # jittered hits of varying quality, some missed
            if rng.random() < 0.8:
                jitter = rng.normal(0, rng.choice([1.0, 6.0, 15.0]), 4)
                x1, y1, x2, y2 = np.asarray(box) + jitter
                found.append([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), rng.random()])
        for _ in range(int(rng.integers(0, 3))):  # false positives (also on negative images)
            x, y = rng.uniform(0, 200, 2)
            found.append([x, y, x + rng.uniform(5, 60), y + rng.uniform(5, 60), rng.random()])
        if found:
            preds[image] = np.asarray(found)
            if tied:
                preds[image][:, 4] = preds[image][:, 4].round(1)
    return gt, preds


@pytest.mark.parametrize("seed", range(8))
def test_map_matches_pycocotools_on_random_cases(seed):
    gt, preds = random_case(np.random.default_rng(seed), n_images=6 + 3 * seed, tied=seed % 2 == 1)
    images = sorted(gt)
    ours = detection_metrics(gt, preds, images)
    reference, per_threshold = coco_map(gt, preds, images)
    assert ours["map"] == pytest.approx(reference, abs=1e-6)
    for t, value in zip(IOU_THRESHOLDS, per_threshold):
        assert ours[f"ap@{t:.2f}"] == pytest.approx(value, abs=1e-6)


def test_map_matches_pycocotools_on_hand_made_cases():
    gt = {"a": [[0, 0, 10, 10], [20, 20, 40, 40]], "b": [[5, 5, 15, 25]], "c": [], "d": [[0, 0, 4, 4]]}
    preds = {
        "a": [[0, 0, 10, 10, 0.9], [21, 22, 41, 39, 0.8], [50, 50, 60, 60, 0.95]],  # one FP scores highest
        "b": [[5, 7, 15, 24, 0.6], [6, 6, 14, 22, 0.6]],  # a duplicate with a tied score
        "c": [[0, 0, 30, 30, 0.99]],  # false positive on a negative image
        "d": [[1, 1, 5, 5, 0.3]],  # IoU 9/23 = 0.39: a miss at every threshold
    }
    images = sorted(gt)
    reference, _ = coco_map(gt, preds, images)
    assert detection_metrics(gt, preds, images)["map"] == pytest.approx(reference, abs=1e-6)


def test_oracles():
    gt = {"a": [[0, 0, 10, 10]], "b": [[20, 20, 40, 50], [60, 60, 70, 90]], "n": []}
    perfect = {k: [[*box, 0.9] for box in v] for k, v in gt.items()}
    assert detection_metrics(gt, perfect, sorted(gt))["map"] == pytest.approx(1.0)
    assert detection_metrics(gt, {}, sorted(gt))["map"] == 0.0
    # a false positive on a negative image scoring above every hit halves precision at the top
    with_fp = {**perfect, "n": [[0, 0, 5, 5, 0.95]]}
    assert detection_metrics(gt, with_fp, sorted(gt))["map"] < 1.0


def test_mgca_rule_counts_only_images_with_gt_and_a_prediction():
    gt = {"hit": [[0, 0, 10, 10]], "missed": [[0, 0, 10, 10]], "neg": []}
    preds = {"hit": [[0, 0, 10, 10, 0.9]], "neg": [[0, 0, 10, 10, 0.99]]}
    default = detection_metrics(gt, preds, sorted(gt))
    mgca = detection_metrics(gt, preds, sorted(gt), mgca=True)
    assert mgca["map"] == pytest.approx(1.0) and mgca["images_counted"] == 1 and mgca["rule"] == "mgca"
    assert default["map"] < 0.5 and default["images_counted"] == 3
    assert default["map"] == pytest.approx(coco_map(gt, preds, sorted(gt))[0], abs=1e-6)


def test_metric_recomputes_from_a_predictions_table():
    rows = [
        ("a", "image", np.nan, *[np.nan] * 4),
        ("a", "gt", np.nan, 0, 0, 10, 10),
        ("a", "pred", 0.8, 0, 0, 10, 11),
        ("b", "image", np.nan, *[np.nan] * 4),
        ("b", "pred", 0.9, 0, 0, 5, 5),
    ]
    table = pd.DataFrame(rows, columns=["image_id", "kind", "score", "x1", "y1", "x2", "y2"])
    gt = {"a": [[0, 0, 10, 10]], "b": []}
    preds = {"a": [[0, 0, 10, 11, 0.8]], "b": [[0, 0, 5, 5, 0.9]]}
    assert metrics_from_table(table)["map"] == pytest.approx(detection_metrics(gt, preds, ["a", "b"])["map"])
    assert average_precision(gt, preds, 0.5) == pytest.approx(0.5)


# ------------------------------------------------------------------ bootstrap over test images
@pytest.mark.parametrize("seed", range(4))
def test_resampled_map_equals_the_metric_on_duplicated_images(seed):
    """The leaderboard's bootstrap scorer: the identity resample is the unit's mAP exactly, and
    a resample with repeats is the mAP of those images copied under new names (matching is
    per image, so re-weighting equals copying)."""
    rng = np.random.default_rng(100 + seed)
    gt, preds = random_case(rng, n_images=15)  # continuous scores: no ties across copies
    images = sorted(gt)
    scorer = ResampledMAP(gt, preds, images)
    assert scorer(np.arange(len(images))) == detection_metrics(gt, preds, images)["map"]
    for _ in range(3):
        draw = rng.integers(0, len(images), len(images))
        copies_gt, copies_preds, names = {}, {}, []
        for k, index in enumerate(draw):
            name = f"copy{k:03d}"
            image = scorer.images[index]
            copies_gt[name] = gt[image]
            if image in preds:
                copies_preds[name] = preds[image]
            names.append(name)
        expected = detection_metrics(copies_gt, copies_preds, names)["map"]
        assert scorer(draw) == pytest.approx(expected, abs=1e-12)
    assert scorer(np.zeros(0, dtype=int)) == 0.0


def test_detection_leaderboard_interval_is_a_bootstrap_over_images():
    from benchmark.registry import all_tasks
    from benchmark.scoring import unit_scores

    gt, preds = random_case(np.random.default_rng(7), n_images=20)
    rows = []
    for image in sorted(gt):
        rows.append((image, "image", np.nan, *[np.nan] * 4))
        rows += [(image, "gt", np.nan, *box) for box in gt[image]]
        rows += [(image, "pred", box[4], *box[:4]) for box in preds.get(image, [])]
    table = pd.DataFrame(rows, columns=["image_id", "kind", "score", "x1", "y1", "x2", "y2"])
    scores = unit_scores(all_tasks()["objectcxr_det"], table)
    ids = scores.image_ids
    assert list(ids) == sorted(gt)
    assert scores.value("map") == pytest.approx(metrics_from_table(table)["map"], abs=1e-12)
    assert scores.value("map_reference") == pytest.approx(metrics_from_table(table, mgca=True)["map"], abs=1e-12)


def test_reference_rule_resample_equals_the_reference_map_of_duplicated_images():
    """MGCA's rule under the bootstrap: a resample's reference mAP equals the reference mAP of
    the resampled images duplicated under new names (images without a box or a prediction
    weigh nothing wherever they are drawn)."""
    rng = np.random.default_rng(3)
    gt, preds = random_case(rng, n_images=15)
    images = sorted(set(gt) | set(preds))
    scorer = ResampledMAP(gt, preds, images, reference=True)
    assert scorer(np.arange(len(images))) == pytest.approx(
        detection_metrics(gt, preds, images, mgca=True)["map"], abs=1e-12
    )
    for _ in range(5):
        draw = rng.integers(0, len(images), size=len(images))
        copies_gt, copies_preds, names = {}, {}, []
        for k, index in enumerate(draw):
            image, name = images[index], f"copy{k}"
            if image in gt:
                copies_gt[name] = gt[image]
            if image in preds:
                copies_preds[name] = preds[image]
            names.append(name)
        assert scorer(draw) == pytest.approx(
            detection_metrics(copies_gt, copies_preds, names, mgca=True)["map"], abs=1e-12
        )
