"""Detection family: geometry, config, frozen backbone, end to end through the CLI."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli import main
from benchmark.det_metrics import metrics_from_table
from benchmark.families import detection
from benchmark.registry import all_tasks
from benchmark.results import UnitId, read_results
from benchmark.runner import run_one

from .cli_args import demo_cli_args


def demo_args(demo_root, cache, output, *extra, encoder="random:resnet_tiny"):
    return demo_cli_args(demo_root, cache, output, *extra, encoder=encoder)


def test_tasks_are_registered_with_the_protocol_recipe():
    tasks = all_tasks()
    rsna, ocxr = tasks["rsna_det"], tasks["objectcxr_det"]
    assert rsna.family == ocxr.family == "detection" and rsna.metric == "map"
    assert (rsna.recipe.lr_for(1), ocxr.recipe.lr_for(1), rsna.recipe.lr_for(10), ocxr.recipe.lr_for(100)) == (
        2e-4,
        2.5e-4,
        5e-4,
        5e-4,
    )
    assert (rsna.recipe.batch_size_for(1), rsna.recipe.batch_size_for(10), rsna.recipe.batch_size_for(100)) == (
        8,
        16,
        16,
    )
    assert rsna.recipe.weight_decay == 1e-6 and rsna.recipe.max_epochs == 50 and rsna.recipe.patience == 10
    assert rsna.recipe.objectness_threshold == 0.5 and rsna.recipe.nms_iou == 0.5 and rsna.recipe.input_size == 224


def test_config_scales_coco_anchors_and_uses_the_shared_backbone():
    from benchmark.openmmlab.detection_config import detection_config

    recipe = all_tasks()["rsna_det"].recipe
    cfg = detection_config(
        recipe,
        fraction=1,
        seed=3,
        encoder_spec="random:resnet50",
        in_channels=(512, 1024, 2048),
        strides=(8, 16, 32),
        input_size=224,
    )
    model = cfg.model
    assert (
        model.type == "YOLOV3"
        and model.neck.type == "YOLOV3Neck"
        and model.bbox_head.type == "MedVLPReferenceYOLOV3Head"
    )
    assert model.backbone.type == "FrozenEncoderBackbone" and tuple(model.backbone.out_indices) == (2, 3, 4)
    assert model.neck.in_channels == [2048, 1024, 512] and model.bbox_head.num_classes == 1
    assert list(model.bbox_head.featmap_strides) == [32, 16, 8]
    assert model.bbox_head.anchor_generator.base_sizes[0][0] == pytest.approx(
        (116 * 224 / 416, 90 * 224 / 416), abs=1e-3
    )
    assert model.bbox_head.anchor_generator.base_sizes[2][0] == pytest.approx(
        (10 * 224 / 416, 13 * 224 / 416), abs=1e-3
    )
    assert model.test_cfg.conf_thr == 0.5 and model.test_cfg.nms.iou_threshold == 0.5
    assert cfg.optimizer.lr == 2e-4 and cfg.train_loop.batch_size == 8 and cfg.randomness.seed == 3
    # the config holds only what the harness's loop runs: no mmengine runner sections it would ignore
    assert not {"optim_wrapper", "train_cfg", "train_dataloader", "early_stopping"} & set(cfg.keys())


def test_boxes_follow_the_letterbox_transform():
    from benchmark.preprocess import resize_and_pad

    image = np.zeros((300, 200), np.uint8)
    image[60:120, 40:140] = 255  # box x 40..140, y 60..120
    size = 96
    padded = resize_and_pad(image, size)
    geometry = detection.letterbox(300, 200, size)
    box = detection.to_input(np.array([[40.0, 60.0, 140.0, 120.0]]), geometry)[0]
    ys, xs = np.nonzero(padded > 127)
    assert box == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=1.0)
    back = detection.from_input(
        detection.to_input(np.array([[40.0, 60.0, 140.0, 120.0]]), geometry), geometry, 300, 200
    )
    assert back[0] == pytest.approx([40, 60, 140, 120])


def test_boxes_follow_the_stretch_transform_by_default():
    from benchmark.preprocess import fit_square

    image = np.zeros((300, 200), np.uint8)
    image[60:120, 40:140] = 255  # box x 40..140, y 60..120
    size = 96
    stretched = fit_square(image, size, "stretch")
    assert stretched.shape == (size, size)
    geometry = detection.input_geometry(300, 200, size, "stretch")
    assert geometry == (96 / 200, 96 / 300, 0, 0)
    box = detection.to_input(np.array([[40.0, 60.0, 140.0, 120.0]]), geometry)[0]
    assert box == pytest.approx([19.2, 19.2, 67.2, 38.4])
    ys, xs = np.nonzero(stretched > 127)
    assert box == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=1.0)
    back = detection.from_input(
        detection.to_input(np.array([[40.0, 60.0, 140.0, 120.0]]), geometry), geometry, 300, 200
    )
    assert back[0] == pytest.approx([40, 60, 140, 120])
    assert detection.input_geometry(300, 200, size, "letterbox") == detection.letterbox(300, 200, size)


def test_frozen_backbone_weights_and_statistics_are_unchanged_after_training(demo_root, tmp_path):
    """Exact mode: the encoder runs in every training step, with the model in train mode."""
    from benchmark.context import RunContext
    from benchmark.suites import demo_suite
    from benchmark.task_data import load_task_data
    from models.loading import load_encoder

    task = all_tasks()["objectcxr_det"]
    suite = demo_suite(demo_root, generate=False)
    data = load_task_data(task, suite, tmp_path)
    loaded = load_encoder("random:resnet_tiny")
    before = {k: v.clone() for k, v in loaded.encoder.state_dict().items()}
    assert any("running_mean" in k for k in before)
    suite.extra["detection_recipe"] = {**suite.extra["detection_recipe"], "max_epochs": 2}
    ctx = RunContext(
        loaded, torch.device("cpu"), suite, tmp_path / "out", tmp_path, feature_cache=None, progress=False, limit=12
    )
    result, predictions = run_one(ctx, data, UnitId(task="objectcxr_det", fraction=100, seed=0))
    after = loaded.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "frozen encoder changed"
    assert not loaded.encoder.training
    assert result.flags["exact_features"] and result.training["epochs_run"] == 2 and result.flags["limit"] == 12
    assert set(predictions["kind"]) <= {"image", "gt", "pred"}


def test_exact_mode_equals_cached_mode_bit_for_bit(demo_root, tmp_path, monkeypatch):
    """--no-feature-cache recomputes the very fp16-rounded maps the cache stores, so the
    cache is a pure speed-up: same training history, same predictions, same mAP. Cached
    maps held in device memory or read from the memmap in every step: the same again."""
    from benchmark.context import RunContext
    from benchmark.features import FeatureCache
    from benchmark.suites import demo_suite
    from benchmark.task_data import load_task_data
    from models.loading import load_encoder

    task = all_tasks()["objectcxr_det"]
    suite = demo_suite(demo_root, generate=False)
    suite.extra["detection_recipe"] = {**suite.extra["detection_recipe"], "max_epochs": 3}
    data = load_task_data(task, suite, tmp_path)
    loaded = load_encoder("random:resnet_tiny")
    runs = {}
    for mode, cache, budget_gb in (
        ("cached", FeatureCache(tmp_path / "features"), "1"),
        ("memmap", FeatureCache(tmp_path / "features"), "0"),
        ("exact", None, "1"),
    ):
        monkeypatch.setenv("MEDVLP_RESIDENT_GB", budget_gb)
        ctx = RunContext(
            loaded, torch.device("cpu"), suite, tmp_path / mode, tmp_path, feature_cache=cache, progress=False, limit=24
        )
        runs[mode] = run_one(ctx, data, UnitId(task="objectcxr_det", fraction=100, seed=0))
    (cached, cached_preds), (memmap, memmap_preds), (exact, exact_preds) = runs["cached"], runs["memmap"], runs["exact"]
    assert cached.training["feature_cache"]["train"]["computed"] > 0 and exact.flags["exact_features"]
    assert cached.training["feature_cache"]["train"]["resident_bytes"] > 0 and not cached.flags["exact_features"]
    assert memmap.training["feature_cache"]["train"] == {"computed": 0, "cached": 24, "resident_bytes": 0}
    for other, other_preds in ((memmap, memmap_preds), (exact, exact_preds)):
        assert cached.training["history"] == other.training["history"]
        assert cached.value == other.value
        pd.testing.assert_frame_equal(cached_preds, other_preds)


@pytest.fixture(scope="module")
def det_run(demo_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("det-cache")
    output = tmp_path_factory.mktemp("det-out") / "run"
    assert main(demo_args(demo_root, cache, output, "--tasks", "rsna_det,objectcxr_det", "--fractions", "1,10")) == 0
    return cache, output


def test_cli_runs_both_detection_tasks_and_writes_results(det_run):
    _, output = det_run
    results = read_results(output)
    assert sorted((r.unit.task, r.unit.fraction) for r in results) == [
        ("objectcxr_det", 1),
        ("objectcxr_det", 10),
        ("rsna_det", 1),
        ("rsna_det", 10),
    ]
    for r in results:
        assert r.family == "detection" and r.metric == "map" and 0.0 <= r.value <= 1.0
        assert r.hyperparameters["input_size"] == 96  # the demo suite's image size
        config = r.hyperparameters["mmengine_config"]
        assert config["model"]["type"] == "YOLOV3" and config["model"]["backbone"]["type"] == "FrozenEncoderBackbone"
        assert config["randomness"]["seed"] == 0
        assert r.metrics["rule"] == "all_images" and r.metrics["reference"]["rule"] == "mgca"
        assert "sound all-images rule" in r.training["selection"]
        assert r.training["epochs_run"] <= 60 and len(r.training["history"]) == r.training["epochs_run"]
        assert r.hyperparameters["lr"] == all_tasks()[r.unit.task].recipe.model_copy(
            update=r.hyperparameters["suite"]["extra"]["detection_recipe"]
        ).lr_for(r.unit.fraction)
        table = pd.read_csv(output / r.unit.task / r.predictions_file, dtype={"image_id": str})
        assert (table["kind"] == "image").sum() == r.data["n_test"]
        assert metrics_from_table(table)["map"] == pytest.approx(r.value, abs=1e-9)
        assert metrics_from_table(table, mgca=True)["map"] == pytest.approx(r.metrics["map_reference"], abs=1e-9)
        assert (table["kind"] == "gt").sum() == r.metrics["gt_boxes"]


def test_rerun_resumes_and_the_reference_rule_switch_is_gone(demo_root, det_run, capsys):
    cache, output = det_run
    capsys.readouterr()
    assert main(demo_args(demo_root, cache, output, "--tasks", "detection", "--fractions", "1,10")) == 0
    assert "4 of 4 units already finished" in capsys.readouterr().out
    # both rules are in every result now: the old switch is refused, not silently ignored
    with pytest.raises(SystemExit):
        main(
            demo_args(
                demo_root,
                cache,
                output.parent / "mgca",
                "--tasks",
                "objectcxr_det",
                "--fractions",
                "1",
                "--mgca-det-map",
            )
        )


def test_v1_switches_are_recorded_select_mmdets_head_and_letterbox_and_stay_off_submissions(
    demo_root, det_run, tmp_path
):
    """--yolo-semantics mmdet --geometry letterbox: protocol v1's settings, recorded in the
    flags (hence the unit key) and in the config; the default run records neither."""
    from benchmark.submissions import COMPAT_FLAGS

    cache, default_output = det_run
    output = tmp_path / "v1-switches"
    assert (
        main(
            demo_args(
                demo_root,
                cache,
                output,
                "--tasks",
                "objectcxr_det",
                "--fractions",
                "1",
                "--limit",
                "12",
                "--yolo-semantics",
                "mmdet",
                "--geometry",
                "letterbox",
            )
        )
        == 0
    )
    (switched,) = read_results(output)
    default = next(r for r in read_results(default_output) if r.unit.task == "objectcxr_det")
    assert switched.flags["yolo_semantics"] == "mmdet" and switched.flags["dense_geometry"] == "letterbox"
    assert "yolo_semantics" not in default.flags and "dense_geometry" not in default.flags
    assert switched.hyperparameters["mmengine_config"]["model"]["bbox_head"]["type"] == "YOLOV3Head"
    assert default.hyperparameters["mmengine_config"]["model"]["bbox_head"]["type"] == "MedVLPReferenceYOLOV3Head"
    assert switched.hyperparameters["preprocess"].startswith("letterbox") and default.hyperparameters[
        "preprocess"
    ].startswith("stretch")
    assert switched.protocol_version == default.protocol_version == 2
    assert {"yolo_semantics", "dense_geometry"} <= set(COMPAT_FLAGS)


def test_patience_progress_rule_with_and_without_a_loss_min_delta():
    from benchmark.early_stopping import Patience

    def progress(val_map, val_loss, best_map, reference_loss, min_delta):
        """Whether one epoch resets the patience of a loop at (best mAP, reference loss)."""
        stopping = Patience(10, min_delta)
        stopping.best_score, stopping.reference = best_map, reference_loss
        stopping.update(val_loss, score=val_map)
        return stopping.stale == 0

    # the recipe's rule (min_delta 0): a higher mAP, or the same mAP with any lower loss
    assert progress(0.2, 5.0, 0.1, 1.0, 0.0)  # mAP up, loss worse: progress
    assert progress(0.0, 0.999, 0.0, 1.0, 0.0)
    assert not progress(0.0, 1.0, 0.0, 1.0, 0.0)
    assert not progress(0.05, 0.5, 0.1, 1.0, 0.0)  # lower mAP never counts
    # the demo's 1%: while the mAP ties, the loss must fall by at least 1% of the reference
    assert not progress(0.0, 0.995, 0.0, 1.0, 0.01)
    assert progress(0.0, 0.989, 0.0, 1.0, 0.01)
    assert progress(0.3, 2.0, 0.2, 1.0, 0.01)
    # the demo suite records the rule, the paper suite keeps 0
    from benchmark.suites import DEMO_EXTRA

    assert DEMO_EXTRA["detection_min_delta"] == 0.01 and DEMO_EXTRA["detection_recipe"]["max_epochs"] == 100
