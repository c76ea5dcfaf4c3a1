"""A unit's settings are resolved once (benchmark/unit_plan.py), from task, suite and flags."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmark.data_roots import DataRoots
from benchmark.errors import ConfigError
from benchmark.registry import all_tasks
from benchmark.suites import DEMO_EXTRA, demo_suite, paper_suite
from benchmark.unit_plan import classification_plan, detection_plan, segmentation_plan, suite_overrides, zeroshot_plan


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    root = tmp_path_factory.mktemp("roots")
    return paper_suite(DataRoots(root, {}, "test")), demo_suite(root, generate=False)


def test_the_paper_suite_plans_the_reference_recipes_unchanged(suites):
    paper, _ = suites
    tasks = all_tasks()
    seg = segmentation_plan(tasks["siim_seg"], paper, {})
    assert seg.task is tasks["siim_seg"] and (seg.input_size, seg.max_epochs, seg.patience, seg.min_delta) == (
        224,
        50,
        10,
        0.0,
    )
    assert not seg.bn_drift and not seg.epochs_capped
    det = detection_plan(tasks["rsna_det"], paper, {})
    assert det.recipe == tasks["rsna_det"].recipe and det.input_size == 224 and det.loss_min_delta == 0.0
    cls = classification_plan(tasks["chexpert_cls"], paper, {})
    assert (cls.resize, cls.crop, cls.probe, cls.min_delta) == (256, 224, tasks["chexpert_cls"].probe, 0.0)
    assert zeroshot_plan(tasks["rsna_zeroshot"], paper, {}).threshold_split == "val"


def test_the_demo_suite_overrides_reach_every_family_through_the_plan(suites):
    _, demo = suites
    tasks = all_tasks()
    seg = segmentation_plan(tasks["siim_seg"], demo, {})
    assert seg.input_size == DEMO_EXTRA["segmentation_input_size"] == 64
    assert seg.task.recipe.decoder_channels == (64, 32, 16, 8, 4) and seg.task.recipe.lr == 3e-3
    assert (seg.max_epochs, seg.patience, seg.min_delta) == (100, 4, 0.01)
    det = detection_plan(tasks["objectcxr_det"], demo, {})
    assert det.input_size == demo.resize == 96 and det.recipe.max_epochs == 100 and det.recipe.patience == 6
    assert det.recipe.lr_for(1) == 1e-3 and det.recipe.batch_size_for(1) == 4 and det.loss_min_delta == 0.01
    cls = classification_plan(tasks["covidx_cls"], demo, {})
    assert (
        (cls.resize, cls.crop) == (96, 84)
        and cls.probe.lr == 5e-3
        and cls.probe.max_epochs == 300
        and cls.min_delta == 0.005
    )


def test_recorded_switches_are_part_of_the_plan(suites):
    paper, _ = suites
    tasks = all_tasks()
    flags = {
        "dense_geometry": "letterbox",
        "yolo_semantics": "mmdet",
        "mgca_bn_drift": True,
        "zeroshot_threshold_on_test": True,
    }
    seg = segmentation_plan(tasks["rsna_seg"], paper, flags)
    det = detection_plan(tasks["rsna_det"], paper, flags)
    assert seg.task.recipe.geometry == det.recipe.geometry == "letterbox" and det.recipe.yolo == "mmdet"
    assert (
        seg.bn_drift and det.bn_drift and zeroshot_plan(tasks["siim_zeroshot"], paper, flags).threshold_split == "test"
    )
    capped = segmentation_plan(tasks["rsna_seg"], paper, {}, epoch_cap=3)  # --seg-max-epochs 3
    assert capped.max_epochs == 3 and capped.epochs_capped


def test_an_unknown_suite_override_is_refused_by_name(suites):
    _, demo = suites
    assert suite_overrides(demo).segmentation_patience == 4
    typo = replace(demo, extra={**DEMO_EXTRA, "segmentation_patiense": 3})
    with pytest.raises(ConfigError, match="segmentation_patiense"):
        segmentation_plan(all_tasks()["siim_seg"], typo, {})
