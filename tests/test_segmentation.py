"""Segmentation family: SIIM parsing, Dice metrics, frozen encoder, config round trip, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli import main
from benchmark.datasets.siim import SIIMPneumothorax, decode_siim_rle, read_siim_rle, siim_mask
from benchmark.results import read_result, read_results
from benchmark.runner import run_one
from benchmark.seg_metrics import mask_counts, per_image_dice, segmentation_metrics

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- SIIM RLE (hand-made fixtures)
def test_rle_is_relative_and_column_major():
    # 3 x 3: column-major positions 1 and 4 = (row 1, col 0) and (row 1, col 1)
    mask = decode_siim_rle("1 1 2 1", 3, 3)
    assert np.argwhere(mask).tolist() == [[1, 0], [1, 1]]
    # 4 x 5 (h x w): a run of 3 from position 2 covers rows 2, 3 of column 0 and row 0 of column 1
    mask = decode_siim_rle(" 2 3 ", 4, 5)
    assert np.argwhere(mask).tolist() == [[0, 1], [2, 0], [3, 0]]
    assert not decode_siim_rle(" -1", 4, 5).any() and not decode_siim_rle("-1", 4, 5).any()
    with pytest.raises(ValueError):
        decode_siim_rle("0 30", 4, 5)  # runs past the image


@pytest.mark.parametrize("header,sep", [("ImageId, EncodedPixels", ", "), ("ImageId,EncodedPixels", ",")])
def test_several_rows_are_a_union_and_minus_one_is_negative(tmp_path, header, sep):
    # image A: two overlapping rows on a 10 x 10 grid: positions 0..9 (column 0) and 5..14
    text = "\n".join([header, f"A{sep}0 10", f"B{sep}-1", f"A{sep}5 10", f"C{sep} -1", f"D{sep}99 1"]) + "\n"
    path = tmp_path / "train-rle.csv"
    path.write_text(text)
    records = read_siim_rle(path).set_index("image_id")
    assert list(records.index) == ["A", "B", "C", "D"]
    assert records["Pneumothorax"].to_dict() == {"A": 1, "B": 0, "C": 0, "D": 1}
    mask = siim_mask(records.at["A", "rle"], 10, 10)
    assert mask.sum() == 15  # union of 10 and 10 pixels overlapping in 5 (last row wins would give 10)
    assert mask[:, 0].all() and mask[:5, 1].all() and not mask[5:, 1].any()
    assert siim_mask(records.at["B", "rle"], 10, 10).sum() == 0
    assert np.argwhere(siim_mask(records.at["D", "rle"], 10, 10)).tolist() == [[9, 9]]


def test_adapter_masks_match_the_demo_truth(demo_root):
    from benchmark.data_roots import DataRoots
    from benchmark.demo.writers.siim import mask_sha256
    from benchmark.images import read_grey

    adapter = SIIMPneumothorax.locate(DataRoots(demo_root, {}, "test"))
    truth = json.loads((demo_root / ".demo_truth" / "siim-acr-pneumothorax.json").read_text())["images"]
    records = adapter.records.set_index("image_id")
    assert set(records.index) == set(truth)
    several = [i for i, t in truth.items() if t["rows"] > 1]
    assert several, "the demo should hold images with several RLE rows"
    for image_id in several[:3] + [i for i in truth if truth[i]["mask_pixels"] == 0][:2]:
        height, width = read_grey(records.at[image_id, "path"]).shape
        mask = siim_mask(records.at[image_id, "rle"], height, width)
        assert int(mask.sum()) == truth[image_id]["mask_pixels"]
        assert mask_sha256(mask) == truth[image_id]["mask_sha256"]
        assert records.at[image_id, "Pneumothorax"] == int(truth[image_id]["mask_pixels"] > 0)


def test_committed_siim_manifest_has_mgca_sizes_and_rebuilds():
    from benchmark.splits import read_manifest

    manifest = read_manifest(ROOT / "tasks" / "manifests" / "siim.csv.gz", "siim")
    assert manifest.frame["split"].value_counts().to_dict() == {"train": 8433, "val": 1807, "test": 1807}
    import importlib.util

    if importlib.util.find_spec("torchxrayvision") is None:
        pytest.skip("torchxrayvision (the official train-rle.csv) is not installed")
    from benchmark.splits import manifest_bytes, sha256_bytes
    from tasks.build_manifests import build, txrv_data_dir

    rebuilt, _, _ = build("siim", txrv_data_dir())
    assert sha256_bytes(manifest_bytes(rebuilt)) == manifest.sha256


# ---------------------------------------------------------------------------- metrics
def test_dice_metrics_against_hand_computation():
    gt = np.zeros((4, 4, 4), dtype=bool)
    prob = np.zeros((4, 4, 4))
    gt[0, :2, :2] = True  # 4 px
    prob[0, :2, :1] = 0.9  # 2 px, inside: dice 2*2/(2+4) = 2/3
    gt[1, 0, :] = True  # 4 px, prediction empty: dice 0
    prob[2, 3, 3] = 0.7  # empty truth, 1 px predicted: 0
    prob[3] = 0.5  # empty truth, exactly 0.5 is NOT > 0.5: empty prediction: 1
    counts = mask_counts(prob, gt, 0.5)
    dice = per_image_dice(**counts)
    assert dice.tolist() == pytest.approx([2 / 3, 0.0, 0.0, 1.0])
    metrics = segmentation_metrics(counts)
    assert metrics["dice"] == pytest.approx((2 / 3 + 0 + 0 + 1) / 4)
    # dataset-level Dice over positive images 0 and 1: 2 * 2 / ((2 + 0) + (4 + 4))
    assert metrics["dice_positive_dataset"] == pytest.approx(4 / 10)
    assert metrics["n_positive"] == 2 and metrics["n_images"] == 4
    # the sound metrics: Dice over the two positives only; 1 of the 2 negatives left empty
    assert metrics["dice_positive"] == pytest.approx((2 / 3 + 0) / 2)
    assert metrics["specificity"] == pytest.approx(1 / 2)


def test_trivial_head_floors_by_hand():
    from benchmark.seg_metrics import trivial_floors

    # 16-pixel images: two positives (4 and 8 true pixels), three negatives
    floors = trivial_floors([4, 8, 0, 0, 0], 16)
    nothing, everything = floors["predict_nothing"], floors["predict_everything"]
    assert nothing == {"dice": pytest.approx(3 / 5), "dice_positive": 0.0, "specificity": 1.0}
    # predicting all 16 pixels: Dice 2*4/(16+4) = 0.4 and 2*8/(16+8) = 2/3 on the positives, 0 on the negatives
    assert everything["dice_positive"] == pytest.approx((0.4 + 2 / 3) / 2)
    assert everything["dice"] == pytest.approx((0.4 + 2 / 3) / 5)
    assert everything["specificity"] == 0.0
    # the floors are what the metric itself gives those two heads
    counts = {
        "intersection": [0, 0, 0, 0, 0],
        "pred_pixels": [0] * 5,
        "true_pixels": [4, 8, 0, 0, 0],
        "pixels": [16] * 5,
    }
    assert segmentation_metrics(counts)["dice"] == pytest.approx(nothing["dice"])
    assert segmentation_metrics(counts)["floors"] == floors


def test_predict_nothing_floors_on_the_real_test_manifests():
    """On the committed SIIM and RSNA test sets the reference rule gives an empty-mask head
    77.9 and 77.5 (the share of negative test images), and dice_positive gives it 0."""
    from benchmark.paper_floors import paper_floors, test_true_pixels
    from benchmark.registry import all_tasks

    tasks = all_tasks()
    expected = {"siim_seg": (1807, 1407), "rsna_seg": (5337, 4135)}
    for task_id, (n_test, n_negative) in expected.items():
        ids, true = test_true_pixels(tasks[task_id].dataset, tasks[task_id].mask_source, 224)
        assert len(ids) == n_test and int((true == 0).sum()) == n_negative
        floors = paper_floors(tasks[task_id])
        assert floors["predict_nothing"]["dice"] == pytest.approx(n_negative / n_test)
        assert floors["predict_nothing"]["dice_positive"] == 0.0
        assert (
            0.0 < floors["predict_everything"]["dice_positive"] < 0.25
            and floors["predict_everything"]["specificity"] == 0.0
        )
    assert round(100 * paper_floors(tasks["siim_seg"])["predict_nothing"]["dice"], 1) == 77.9
    assert round(100 * paper_floors(tasks["rsna_seg"])["predict_nothing"]["dice"], 1) == 77.5


def test_focal_log_dice_loss_matches_formula():
    from benchmark.openmmlab.unet_decoder import FocalLogDiceLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 1, 5, 5)
    target = (torch.rand(2, 5, 5) > 0.7).long()
    p = torch.sigmoid(logits[:, 0]).double()
    t = target.double()
    p_t = p * t + (1 - p) * (1 - t)
    focal = (-((1 - p_t) ** 2) * torch.log(p_t)).mean()
    dice = (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    expected = 10 * focal - torch.log(dice)
    assert float(FocalLogDiceLoss()(logits, target)) == pytest.approx(float(expected), rel=1e-5)


# ---------------------------------------------------------------------------- training unit
def _context(demo_root, tmp_path, flags=None, spec="random:resnet_tiny"):
    from benchmark.context import RunContext
    from benchmark.features import FeatureCache
    from benchmark.suites import demo_suite
    from models.loading import load_encoder

    loaded = load_encoder(spec)
    loaded.encoder.eval()
    suite = demo_suite(demo_root, generate=False)
    return RunContext(
        loaded=loaded,
        device=torch.device("cpu"),
        suite=suite,
        output=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        feature_cache=FeatureCache(tmp_path / "cache" / "features"),
        workers=0,
        progress=False,
        limit=12,
        flags=flags or {},
    )


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_reference_augmentation_rotates_and_scales_without_shifting_and_fills_the_border_with_zero():
    """MGCA's ShiftScaleRotate(shift 0, scale 0.1, rotate 10, p 0.5, constant border): with a
    fixed draw the warp is the rotation/scaling about the centre, and pixels that come from
    outside the image are 0 (not a reflection of the image)."""
    from benchmark.families.segmentation import shift_scale_rotate
    from benchmark.registry import all_tasks
    from benchmark.segmentation_spec import ShiftScaleRotate

    aug = all_tasks()["siim_seg"].recipe.augmentation
    assert (aug.shift_limit, aug.scale_limit, aug.rotate_limit, aug.p, aug.border) == (0.0, 0.1, 10.0, 0.5, "constant")
    assert all_tasks()["siim_seg"].recipe.geometry == all_tasks()["rsna_seg"].recipe.geometry == "stretch"
    image = np.full((32, 32), 200, np.uint8)
    mask = np.ones((32, 32), bool)

    class Draws:  # p passes; rotate the full 10 degrees, scale 0.9, no shift drawn
        def uniform(self, low=0.0, high=1.0, size=None):
            if size is not None:
                return np.zeros(size)
            return {(0.0, 1.0): 0.0, (-10.0, 10.0): 10.0, (-0.1, 0.1): -0.1}[(low, high)]

    out_image, out_mask = shift_scale_rotate(image, mask, aug, Draws())
    assert out_image[0, 0] == 0 and not out_mask[0, 0]  # corners come from outside: zero fill
    assert out_image[16, 16] == 200 and out_mask[16, 16]
    reflect = ShiftScaleRotate(shift_limit=0.0, border="reflect_101")
    assert shift_scale_rotate(image, mask, reflect, Draws())[0][0, 0] == 200  # protocol v1's border


def test_segmentation_images_and_masks_are_stretched_like_the_reference(demo_root, tmp_path):
    """A non-square image: stretched (linear) to the square, the mask with it; letterbox on request."""
    import cv2

    from benchmark.families.segmentation import _Decode
    from benchmark.registry import all_tasks

    image = np.zeros((60, 120), np.uint8)
    image[:, 60:] = 255  # right half bright
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), image)
    records = pd.DataFrame({"path": [str(path)], "boxes": [[(60.0, 0.0, 60.0, 60.0)]]})
    task = all_tasks()["rsna_seg"]
    _, stretched, stretched_mask = _Decode(task, records, 32, "stretch")[0]
    assert (
        tuple(stretched.shape) == (32, 32)
        and stretched[:, 20:].float().mean() == 255
        and stretched[:, :12].float().mean() == 0
    )
    assert stretched_mask[:, 16:].all() and not stretched_mask[:, :16].any()  # the right half, full height
    _, boxed, boxed_mask = _Decode(task, records, 32, "letterbox")[0]
    assert (
        boxed[:8].float().mean() == 0 and boxed_mask[8:24, 16:].all() and not boxed_mask[:8].any()
    )  # zero bands top and bottom


def test_frozen_encoder_is_bit_identical_and_config_rebuilds_the_model(demo_root, tmp_path, monkeypatch):
    from benchmark.families import segmentation
    from benchmark.openmmlab.segmentation_config import build_segmentor
    from benchmark.registry import all_tasks
    from benchmark.results import UnitId
    from benchmark.task_data import load_task_data

    monkeypatch.setattr(segmentation, "MEMORY_BUDGET", 0)  # val/test pyramids go to the on-disk cache
    ctx = _context(demo_root, tmp_path)
    ctx.seg_epoch_cap = 2  # --seg-max-epochs 2
    before = _state(ctx.encoder)
    data = load_task_data(all_tasks()["siim_seg"], ctx.suite, ctx.cache_dir)
    result, predictions = run_one(ctx, data, UnitId(task="siim_seg", fraction=100, seed=0))
    after = _state(ctx.encoder)
    assert before.keys() == after.keys() and any("running_mean" in k for k in before)
    for key in before:
        assert torch.equal(before[key], after[key]), key  # weights AND batch-norm buffers
    assert result.training["epochs_run"] == 2 and result.flags["max_epochs_capped"] == 2
    assert result.training["feature_cache"]["val"]["source"] == "disk cache (computed)"
    assert list((tmp_path / "cache" / "pyramids").glob("*/*/meta.json"))
    assert len(predictions) == result.data["n_test"] == 12
    assert result.value == pytest.approx(predictions["dice"].mean())

    # the cached pyramids were held in device memory; read from the memmap on every pass
    # instead, the unit gives the same numbers bit for bit
    assert result.training["feature_cache"]["val"]["resident_bytes"] > 0
    monkeypatch.setenv("MEDVLP_RESIDENT_GB", "0")
    again, again_predictions = run_one(ctx, data, UnitId(task="siim_seg", fraction=100, seed=0))
    assert again.training["feature_cache"]["val"] == {
        **result.training["feature_cache"]["val"],
        "source": "disk cache (reused)",
        "resident_bytes": 0,
    }
    assert again.training["history"] == result.training["history"] and again.value == result.value
    pd.testing.assert_frame_equal(again_predictions, predictions)

    config = result.hyperparameters["mmengine_config"]
    # the demo suite's narrower decoder and larger learning rate (benchmark/suites.py); the
    # task's own recipe (the paper suite's) is MGCA's and unchanged
    assert config["randomness"]["seed"] == 0 and config["optim_wrapper"]["optimizer"]["lr"] == 3e-3
    assert config["model"]["decode_head"]["decoder_channels"] == [64, 32, 16, 8, 4]
    # the loop ran what the stored config says: the demo's epoch cap (here 2), patience and min_delta
    assert config["train_loop"]["max_epochs"] == 2
    assert config["train_loop"]["early_stopping"] == {
        "monitor": "val_loss",
        "rule": "less",
        "patience": 4,
        "min_delta": 0.01,
    }
    assert result.hyperparameters["recipe"]["decoder_channels"] == [64, 32, 16, 8, 4]
    assert data.task.recipe.decoder_channels == (256, 128, 64, 32, 16) and data.task.recipe.lr == 5e-4
    rebuilt = build_segmentor(json.loads(json.dumps(config)))
    from benchmark.openmmlab.segmentation_config import segmentation_config

    fresh = build_segmentor(
        segmentation_config(
            segmentation.plan_of(data.task, ctx).task,
            ctx.loaded.spec,
            ctx.encoder.pyramid_channels,
            input_size=84,
            seed=0,
            max_epochs=2,
        )
    )
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(rebuilt) == shapes(fresh)
    assert (
        type(rebuilt.decode_head).__name__ == "UNetDecodeHead"
        and type(rebuilt.backbone).__name__ == "FrozenEncoderBackbone"
    )


def test_bn_drift_switch_is_recorded_and_leaves_the_shared_encoder_alone(demo_root, tmp_path, monkeypatch):
    from benchmark.registry import all_tasks
    from benchmark.results import UnitId
    from benchmark.task_data import load_task_data

    ctx = _context(demo_root, tmp_path, flags={"mgca_bn_drift": True})
    ctx.seg_epoch_cap = 1  # --seg-max-epochs 1
    before = _state(ctx.encoder)
    data = load_task_data(all_tasks()["rsna_seg"], ctx.suite, ctx.cache_dir)
    result, _ = run_one(ctx, data, UnitId(task="rsna_seg", fraction=100, seed=0))
    assert result.flags["mgca_bn_drift"] is True and result.hyperparameters["eval_features_cached"] is False
    assert result.hyperparameters["mmengine_config"]["model"]["backbone"]["bn_drift"] is True
    assert all(torch.equal(v, ctx.encoder.state_dict()[k]) for k, v in before.items())


# ---------------------------------------------------------------------------- CLI end to end
def test_cli_demo_run_writes_segmentation_results_and_resumes(demo_root, tmp_path, monkeypatch, capsys):
    output = tmp_path / "run"
    args = [
        "--seg-max-epochs",
        "1",
        "--encoder",
        "random:resnet_tiny",
        "--suite",
        "demo",
        "--demo-root",
        str(demo_root),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--output",
        str(output),
        "--no-progress",
        "--workers",
        "0",
        "--tasks",
        "segmentation",
        "--limit",
        "10",
    ]
    assert main(args) == 0
    results = read_results(output)
    assert sorted((r.unit.task, r.unit.fraction) for r in results) == [
        (t, f) for t in ("rsna_seg", "siim_seg") for f in (1, 10, 100)
    ]
    for r in results:
        assert r.family == "segmentation" and r.metric == "dice" and 0.0 <= r.value <= 1.0
        assert r.hyperparameters["recipe"]["weight_decay"] == 0.05 and r.hyperparameters["input_size"] == 64
        assert r.hyperparameters["recipe"]["batch_size"] == (8 if r.unit.task == "siim_seg" else 16)
        frame = pd.read_csv(output / r.unit.task / r.predictions_file)
        assert segmentation_metrics(frame)["dice"] == pytest.approx(r.value)
        assert r.metrics["dice_positive_dataset"] == pytest.approx(
            segmentation_metrics(frame)["dice_positive_dataset"], nan_ok=True
        )
        recomputed = segmentation_metrics(frame)
        for key in ("dice_positive", "specificity"):
            assert r.metrics[key] == pytest.approx(recomputed[key], nan_ok=True)
        assert r.metrics["floors"] == recomputed["floors"] and (frame["pixels"] == 64 * 64).all()
    assert any(r.training["feature_cache"]["val"]["source"].startswith("memory (reused)") for r in results)
    capsys.readouterr()
    assert main(args) == 0
    assert "6 of 6 units already finished" in capsys.readouterr().out
    assert (
        read_result(output / "siim_seg" / "siim_seg_frac100_seed0.json").value
        == [r for r in results if r.unit.task == "siim_seg" and r.unit.fraction == 100][0].value
    )
