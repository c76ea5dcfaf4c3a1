"""The benchmark's metrics as local ``evaluate`` modules (benchmark/evaluate_modules/): loaded offline by
path, and computing exactly what the harness computes (against the harness's functions, scikit-learn,
pycocotools, hand-counted cases and the committed demo units' recorded metrics)."""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.offline import go_offline, network_refused

go_offline()  # nothing may reach the Hugging Face hub: before datasets / evaluate read their configuration

from benchmark.det_metrics import IOU_THRESHOLDS, boxes_from_table, detection_metrics  # noqa: E402
from benchmark.evaluate_modules import NAMES, path  # noqa: E402
from benchmark.metrics import accuracy as harness_accuracy  # noqa: E402
from benchmark.metrics import classification_metrics  # noqa: E402
from benchmark.seg_metrics import mask_counts, segmentation_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "submissions" / "demo-random-init" / "results" / "demo"


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Each module loaded by local path, with the network refused (none may be attempted)."""
    attempts: list = []
    with network_refused(attempts):
        import evaluate

        cache = tmp_path_factory.mktemp("evaluate-cache")
        loaded = {name: evaluate.load(path(name), cache_dir=str(cache)) for name in NAMES}
    assert attempts == [], f"loading the modules tried the network: {attempts}"
    return loaded


@pytest.fixture
def offline():
    attempts: list = []
    with network_refused(attempts):
        yield
    assert attempts == [], f"computing tried the network: {attempts}"


def load_unit(task: str) -> tuple[dict, pd.DataFrame]:
    result = json.loads((DEMO / task / f"{task}_frac100_seed0.json").read_text())
    table = pd.read_csv(DEMO / task / f"{task}_frac100_seed0.predictions.csv.gz", dtype={"image_id": str})
    return result, table


# ------------------------------------------------------------------------------ packaging
def test_modules_are_local_folders_shipped_as_package_data(modules):
    import evaluate

    for name in NAMES:
        folder = Path(path(name))
        assert folder.parent == ROOT / "benchmark" / "evaluate_modules" and (folder / f"{name}.py").is_file()
        assert isinstance(modules[name], evaluate.Metric)
        assert modules[name].name == name
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["benchmark"]
    shipped = {
        p.relative_to(ROOT / "benchmark").as_posix() for pattern in patterns for p in (ROOT / "benchmark").glob(pattern)
    }
    assert {f"evaluate_modules/{name}/{name}.py" for name in NAMES} <= shipped
    deps = {d.split("==")[0]: d for d in config["project"]["dependencies"]}
    assert deps["datasets"].startswith("datasets==") and deps["evaluate"].startswith("evaluate==")
    with pytest.raises(ValueError, match="macro_auc, accuracy, dice, detection_map"):
        path("f1")


# ------------------------------------------------------------------------------ macro AUC
def test_macro_auc_equals_the_harness_and_sklearn_on_multilabel_cases(modules, offline):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, size=(60, 4))
    targets[:, 3] = 0  # one class with a single label value: undefined, left out of the mean
    scores = rng.random((60, 4)).round(2)  # ties within classes
    found = modules["macro_auc"].compute(predictions=scores.tolist(), references=targets.tolist())
    expected = classification_metrics(targets, scores, True, ["0", "1", "2", "3"])
    assert json.dumps(found, sort_keys=True) == json.dumps(expected, sort_keys=True)  # NaN included
    by_hand = np.mean([roc_auc_score(targets[:, c], scores[:, c]) for c in range(3)])
    assert found["auc"] == pytest.approx(by_hand, abs=1e-15)
    assert np.isnan(found["auc_per_class"]["3"]) and found["auc_undefined_classes"] == ["3"]
    # the docstring's example, counted by hand: class 0 ranks perfectly, class 1 wins 1 of 2 pairs
    example = modules["macro_auc"].compute(
        predictions=[[0.9, 0.5], [0.1, 0.7], [0.8, 0.3]], references=[[1, 0], [0, 1], [1, 1]]
    )
    assert example == {"auc": 0.75, "auc_per_class": {"0": 1.0, "1": 0.5}}


def test_macro_auc_binary_and_multiclass_one_vs_rest(modules, offline):
    from sklearn.metrics import accuracy_score, roc_auc_score

    binary = modules["macro_auc"].compute(predictions=[0.9, 0.2, 0.6, 0.4], references=[1, 0, 0, 1])
    assert binary["auc"] == 0.75 == roc_auc_score([1, 0, 0, 1], [0.9, 0.2, 0.6, 0.4])

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=45)
    probs = rng.dirichlet(np.ones(3), size=45)
    found = modules["macro_auc"].compute(
        predictions=probs.tolist(), references=labels.tolist(), class_names=["normal", "pneumonia", "COVID-19"]
    )
    assert found == classification_metrics(labels, probs, False, ["normal", "pneumonia", "COVID-19"])
    assert found["auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"), abs=1e-15)
    assert found["accuracy"] == accuracy_score(labels, probs.argmax(axis=1))
    with pytest.raises(ValueError, match="class indices"):
        modules["macro_auc"].compute(predictions=[[0.5, 0.5]], references=[2])


@pytest.mark.parametrize("task", ["chexpert_cls", "rsna_cls", "covidx_cls"])
def test_macro_auc_reproduces_committed_demo_units(modules, offline, task):
    result, table = load_unit(task)
    targets = table[[c for c in table.columns if c.startswith("target:")]].to_numpy()
    probs = table[[c for c in table.columns if c.startswith("prob:")]].to_numpy(dtype=np.float64)
    references = targets[:, 0].tolist() if task == "covidx_cls" else targets.tolist()
    found = modules["macro_auc"].compute(predictions=probs.tolist(), references=references)
    assert found["auc"] == pytest.approx(result["metrics"]["auc"], abs=1e-12)
    assert list(found["auc_per_class"].values()) == pytest.approx(list(result["metrics"]["auc_per_class"].values()))
    if task == "covidx_cls":
        assert found["accuracy"] == result["metrics"]["accuracy"] == result["value"]


# ------------------------------------------------------------------------------ accuracy
def test_accuracy_equals_the_harness_and_sklearn(modules, offline):
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=50)
    scores = rng.random((50, 4))
    scores[::7] = 0.25  # all-tied rows: the arg-max is the first class, as the harness takes it
    found = modules["accuracy"].compute(predictions=scores.tolist(), references=labels.tolist())
    assert found["accuracy"] == harness_accuracy(labels, scores) == accuracy_score(labels, scores.argmax(axis=1))
    indices = modules["accuracy"].compute(predictions=[0, 2, 1, 3], references=[0, 1, 1, 3])
    assert indices["accuracy"] == 0.75
    assert modules["accuracy"].compute(predictions=[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], references=[0, 1]) == {
        "accuracy": 0.5
    }
    result, table = load_unit("covidx_cls")
    probs = table[["prob:normal", "prob:pneumonia", "prob:COVID-19"]].to_numpy(dtype=np.float64)
    unit = modules["accuracy"].compute(predictions=probs.tolist(), references=table["target:label"].tolist())
    assert unit["accuracy"] == result["metrics"]["accuracy"]


# ------------------------------------------------------------------------------ Dice
def test_dice_under_both_rules_on_hand_counted_masks(modules, offline):
    positive = np.zeros((4, 4))
    positive[0, :2] = 0.9  # predicted: 2 pixels (0.9 > 0.5)
    positive[1, 0] = 0.5  # exactly the threshold: not predicted
    truth = np.zeros((4, 4), dtype=int)
    truth[0, 0] = truth[1, 0] = truth[2, 0] = 1  # 3 true pixels, 1 of them found
    clean_negative = np.full((3, 5), 0.2)  # a negative image predicted empty (another size)
    noisy_negative = np.zeros((2, 2))
    noisy_negative[0, 0] = 0.8  # a negative image with one false-positive pixel
    predictions = [positive, clean_negative, noisy_negative]
    references = [truth, np.zeros((3, 5), dtype=int), np.zeros((2, 2), dtype=int)]
    found = modules["dice"].compute(
        predictions=[p.tolist() for p in predictions], references=[r.tolist() for r in references]
    )
    dice_positive = 2 * 1 / (2 + 3)  # 0.4
    assert found["dice_positive"] == pytest.approx(dice_positive)
    assert found["dice"] == pytest.approx((dice_positive + 1.0 + 0.0) / 3)  # reference rule: empty = 1, FP = 0
    assert found["specificity"] == 0.5 and found["dice_positive_dataset"] == pytest.approx(0.4)
    assert (found["n_images"], found["n_positive"], found["n_negative"]) == (3, 1, 2)
    floors = found["floors"]
    assert floors["predict_nothing"] == {"dice": pytest.approx(2 / 3), "dice_positive": 0.0, "specificity": 1.0}
    assert floors["predict_everything"]["dice_positive"] == pytest.approx(2 * 3 / (3 + 16))
    assert floors["predict_everything"]["dice"] == pytest.approx(2 * 3 / (3 + 16) / 3)
    # the harness's functions on the same arrays give the same dict
    counts = {"intersection": [], "pred_pixels": [], "true_pixels": [], "pixels": []}
    for p, r in zip(predictions, references):
        for key, value in mask_counts(p[None], r[None], 0.5).items():
            counts[key].append(int(value[0]))
        counts["pixels"].append(r.size)
    assert found == segmentation_metrics(counts)
    lower = modules["dice"].compute(
        predictions=[p.tolist() for p in predictions], references=[r.tolist() for r in references], threshold=0.4
    )
    assert lower["dice_positive"] == pytest.approx(2 * 2 / (3 + 3))  # the 0.5 pixel now counts
    with pytest.raises(ValueError, match="same size"):
        modules["dice"].compute(predictions=[[[0.9, 0.1]]], references=[[[1], [0]]])


def masks_with_counts(table: pd.DataFrame, side: int) -> tuple[list, list]:
    """Masks whose counts are a segmentation predictions file's rows (true pixels first, then the
    hits, then the false positives, in raster order)."""
    predictions, references = [], []
    for row in table.itertuples():
        true, pred, hit = int(row.true_pixels), int(row.pred_pixels), int(row.intersection)
        truth = np.zeros(side * side, dtype=int)
        truth[:true] = 1
        prob = np.zeros(side * side)
        prob[:hit] = 0.9
        prob[true : true + pred - hit] = 0.9
        predictions.append(prob.reshape(side, side).tolist())
        references.append(truth.reshape(side, side).tolist())
    return predictions, references


def test_dice_reproduces_a_committed_demo_unit(modules, offline):
    result, table = load_unit("siim_seg")
    side = int(np.sqrt(table["pixels"].iloc[0]))
    assert side * side == table["pixels"].iloc[0]
    predictions, references = masks_with_counts(table, side)
    found = modules["dice"].compute(predictions=predictions, references=references)
    recorded = result["metrics"]
    for key in ("dice", "dice_positive", "specificity", "dice_positive_dataset", "n_positive", "n_negative"):
        assert found[key] == pytest.approx(recorded[key], abs=1e-12), key
    assert found["floors"] == recorded["floors"]
    assert recorded["dice"] == result["value"]


# ------------------------------------------------------------------------------ detection mAP
def coco_map(gt: dict, preds: dict, images: list[str]) -> float:
    """pycocotools' COCOeval mAP over the protocol's IoU thresholds, one category, no detection cap."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {image: k + 1 for k, image in enumerate(sorted(images))}
    annotations = []
    for image in images:
        for x1, y1, x2, y2 in gt.get(image, []):
            box = {"bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            annotations.append({"id": len(annotations) + 1, "image_id": ids[image], "category_id": 1, **box})
    results = [
        {"image_id": ids[image], "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
        for image in images
        for x1, y1, x2, y2, s in preds.get(image, [])
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i} for i in ids.values()],
            "annotations": annotations,
            "categories": [{"id": 1}],
        }
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results) if results else COCO(), "bbox")
        evaluator.params.iouThrs = np.asarray(IOU_THRESHOLDS, dtype=float)
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluator.params.maxDets = [10_000]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, 0, 0, 0]
    return float(np.mean([p[p > -1].mean() if (p > -1).any() else 0.0 for p in precision]))


def random_case(seed: int, n_images: int = 14):
    rng = np.random.default_rng(seed)
    gt, preds = {}, {}
    for k in range(n_images):
        image = f"img{k:03d}"
        boxes = []
        for _ in range(int(rng.integers(0, 3))):
            x, y, w, h = *rng.uniform(0, 200, 2), *rng.uniform(10, 80, 2)
            boxes.append([x, y, x + w, y + h])
        gt[image] = boxes
        found = []
        for box in boxes:  # jittered hits, some missed
            if rng.random() < 0.8:
                x1, y1, x2, y2 = np.asarray(box) + rng.normal(0, rng.choice([1.0, 8.0]), 4)
                found.append([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), round(rng.random(), 1)])
        for _ in range(int(rng.integers(0, 3))):  # false positives, negative images included
            x, y = rng.uniform(0, 200, 2)
            found.append([x, y, x + rng.uniform(5, 60), y + rng.uniform(5, 60), round(rng.random(), 1)])
        preds[image] = found
    return gt, preds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_map_equals_pycocotools_and_the_harness_under_both_rules(modules, offline, seed):
    gt, preds = random_case(seed)
    images = sorted(gt)
    found = modules["detection_map"].compute(
        predictions=[preds[i] for i in images], references=[gt[i] for i in images], image_ids=images
    )
    assert found["map"] == pytest.approx(coco_map(gt, preds, images), abs=1e-12)
    counted = [i for i in images if gt[i] and preds[i]]  # MGCA's rule: images with a box and a prediction
    assert found["map_reference"] == pytest.approx(coco_map(gt, preds, counted), abs=1e-12)
    harness = detection_metrics(gt, preds, images)
    assert {k: found[k] for k in harness} == harness
    assert found["map_reference"] == detection_metrics(gt, preds, images, mgca=True)["map"]
    positional = modules["detection_map"].compute(
        predictions=[preds[i] for i in images], references=[gt[i] for i in images]
    )
    assert positional["map"] == found["map"]  # default ids keep the input order


def test_detection_map_hand_made_rules_and_a_committed_demo_unit(modules, offline):
    # a false positive on a negative image above the only hit: half precision under the sound rule,
    # nothing under the reference rule, which ignores images without ground truth
    found = modules["detection_map"].compute(
        predictions=[[[10, 10, 50, 50, 0.9]], [[0, 0, 5, 5, 0.95]]], references=[[[10, 10, 50, 50]], []]
    )
    assert (found["map"], found["map_reference"]) == (0.5, 1.0)
    missed = modules["detection_map"].compute(predictions=[[], []], references=[[[0, 0, 4, 4]], [[1, 1, 9, 9]]])
    assert missed["map"] == 0.0 and missed["reference"]["images_counted"] == 0
    with pytest.raises(ValueError, match="x1, y1, x2, y2, score"):
        modules["detection_map"].compute(predictions=[[[0, 0, 1, 1]]], references=[[]])

    result, table = load_unit("rsna_det")
    images, gt, preds = boxes_from_table(table)
    unit = modules["detection_map"].compute(
        predictions=[preds.get(i, np.zeros((0, 5))).tolist() for i in images],
        references=[gt.get(i, np.zeros((0, 4))).tolist() for i in images],
        image_ids=images,
    )
    assert unit["map"] == pytest.approx(result["metrics"]["map"], abs=1e-12)
    assert unit["map_reference"] == pytest.approx(result["metrics"]["map_reference"], abs=1e-12)
    assert unit["images"] == result["metrics"]["images"] and unit["gt_boxes"] == result["metrics"]["gt_boxes"]
