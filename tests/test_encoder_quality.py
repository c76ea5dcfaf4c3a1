"""The Dice and the mAP respond to encoder quality on the demo suite.

An encoder briefly trained on the demo's training images (tests/trained_encoder.py: the
``random:resnet50`` initialisation, 240 steps of dense finding prediction, saved as a plain
torchvision checkpoint) must beat ``random:resnet50`` itself, with the demo suite's own
segmentation and detection settings.
"""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.results import read_result

from .trained_encoder import train_demo_encoder


@pytest.fixture(scope="module")
def trained_checkpoint(demo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("trained-encoder")
    return train_demo_encoder(demo_root, work / "cache", work / "resnet50_demo_trained.pt")


@pytest.mark.parametrize("task, secondary", [("siim_seg", "dice_positive_dataset"), ("objectcxr_det", "ap@0.50")])
def test_briefly_trained_encoder_scores_higher_than_random_init(demo_root, tmp_path, trained_checkpoint, task, secondary):
    results = {}
    for name, spec in (("random", "random:resnet50"), ("trained", str(trained_checkpoint))):
        out = tmp_path / name
        args = ["--encoder", spec, "--suite", "demo", "--demo-root", str(demo_root), "--cache-dir", str(tmp_path / "c"),
                "--output", str(out), "--no-progress", "--workers", "0", "--tasks", task, "--fractions", "100"]
        assert main(args) == 0
        results[name] = read_result(out / task / f"{task}_frac100_seed0.json")
    assert results["trained"].encoder["format"] == "torchvision_resnet"
    assert results["trained"].encoder["load_report"]["n_loaded"] == results["trained"].encoder["load_report"]["n_expected"] > 0
    random_value, trained_value = results["random"].value, results["trained"].value
    assert trained_value > random_value + 0.05, (random_value, trained_value)
    # not only through the negatives (segmentation) / the loosest IoU (detection)
    assert results["trained"].metrics[secondary] > results["random"].metrics[secondary], (
        results["random"].metrics[secondary], results["trained"].metrics[secondary])
