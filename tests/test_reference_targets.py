"""Predictions must hold the targets the harness derives from the labels (issue [integrity]).

A submission whose targets were rewritten CONSISTENTLY (every fraction and seed, the JSON
value made to agree) passes every consistency check; only a comparison with the labels
themselves catches it. The committed references (benchmark/data/reference_targets) are
derived from the paper label files (tasks/build_manifests.py --check, tested in
test_splits.py) and from the standard demo suite (tested here).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import reference_targets as rt
from benchmark.registry import all_tasks
from benchmark.result_checks import ResultCheckError, checked_scores
from benchmark.results import Result
from benchmark.scoring import unit_scores
from benchmark.splits import ids_hash
from benchmark.submissions import SUBMISSIONS_DIR, validate_submission

ROOT = Path(__file__).resolve().parents[1]
TASKS = all_tasks()


def test_demo_references_rebuild_bit_for_bit_from_the_standard_demo_suite():
    run = subprocess.run(
        [sys.executable, "scripts/build_reference_targets.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert {line.split(":")[0] for line in lines} == {
        "chexpert",
        "covidx",
        "rsna",
        "rsna.boxes",
        "siim",
        "object_cxr.boxes",
    }
    assert all(line.endswith("OK") for line in lines), lines


def test_the_committed_demo_submissions_carry_the_derived_targets():
    """The harness's own family code wrote these files: their targets equal the reference
    derived from the label files (so the check is engaged and agrees), for every task."""
    folder = SUBMISSIONS_DIR / "demo-random-init" / "results" / "demo"
    checked = 0
    for task_id in ("chexpert_cls", "covidx_cls", "rsna_cls", "siim_seg", "rsna_seg", "objectcxr_det", "rsna_det"):
        task = TASKS[task_id]
        expected = rt.reference_targets(task, "demo")
        for path in sorted((folder / task_id).glob("*.predictions.csv.gz")):
            found = rt.predictions_targets(task, pd.read_csv(path, dtype={"image_id": str}))
            assert sorted(set(found["image_id"])) == sorted(set(expected["image_id"]))
            assert rt.differences(task, found, expected) == [], path
            checked += 1
    assert checked == 21


def copy_demo_submission(tmp_path) -> Path:
    folder = tmp_path / "demo-random-init"
    shutil.copytree(SUBMISSIONS_DIR / "demo-random-init", folder)
    return folder


def rescore(task, result_path: Path, table: pd.DataFrame) -> None:
    """Make the JSON agree with the rewritten predictions (a careful cheat)."""
    data = json.loads(result_path.read_text())
    scores = unit_scores(task, table, pixels=data["hyperparameters"].get("input_size", 0) ** 2 or None)
    data["value"] = scores.value(data["metric"])
    result_path.write_text(json.dumps(data))


def rewrite_everywhere(folder: Path, task_id: str, edit) -> list[Path]:
    paths = sorted((folder / "results" / "demo" / task_id).glob("*.predictions.csv.gz"))
    for path in paths:
        table = edit(pd.read_csv(path, dtype={"image_id": str}))
        table.to_csv(path, index=False, compression="gzip")
        rescore(TASKS[task_id], path.with_name(path.name.replace(".predictions.csv.gz", ".json")), table)
    return paths


def test_consistently_flipped_classification_labels_are_refused(tmp_path):
    folder = copy_demo_submission(tmp_path)

    def flip(table):
        table = table.sort_values("image_id").reset_index(drop=True)
        table.loc[:4, "target:Pneumonia"] = 1 - table.loc[:4, "target:Pneumonia"]
        return table

    paths = rewrite_everywhere(folder, "rsna_cls", flip)
    problems = validate_submission(folder, ("demo",))
    for path in paths:  # every fraction named, with the count and an example
        assert any(
            path.name in p
            and "the targets of 5 of 140 test images differ from the labels the harness derives" in p
            and "the file says Pneumonia=" in p
            for p in problems
        ), problems


def test_moved_ground_truth_boxes_are_refused(tmp_path):
    folder = copy_demo_submission(tmp_path)

    def move(table):
        gt = table.index[table["kind"] == "gt"][:3]
        table.loc[gt, ["x1", "x2"]] += 10.0
        return table

    paths = rewrite_everywhere(folder, "objectcxr_det", move)
    problems = validate_submission(folder, ("demo",))
    assert any(
        paths[0].name in p and "differ from the labels the harness derives" in p and "box(es)" in p for p in problems
    ), problems


def test_negative_images_given_mask_pixels_are_refused(tmp_path):
    folder = copy_demo_submission(tmp_path)

    def invent_masks(table):
        negative = table.index[table["target:Pneumothorax"] == 0][:2]
        table.loc[negative, "true_pixels"] = 50
        return table

    paths = rewrite_everywhere(folder, "siim_seg", invent_masks)
    problems = validate_submission(folder, ("demo",))
    assert any(
        paths[0].name in p and "2 image(s) labelled negative have ground-truth mask pixels" in p for p in problems
    ), problems


@pytest.fixture()
def paper_rsna_result(tmp_path):
    """A paper-suite rsna_cls result on the committed manifest's 5,337 test images with the
    reference targets and arbitrary probabilities (a real result's shape, no real images)."""
    task = TASKS["rsna_cls"]
    source = SUBMISSIONS_DIR / "demo-random-init" / "results" / "demo" / "rsna_cls" / "rsna_cls_frac100_seed0.json"
    data = json.loads(source.read_text())
    expected = rt.reference_targets(task, "paper")
    table = expected.copy()
    table["prob:pneumonia"] = np.random.default_rng(0).random(len(table))
    folder = tmp_path / "results" / "paper"
    (folder / "rsna_cls").mkdir(parents=True)

    def write(table):
        table.to_csv(folder / "rsna_cls" / data["predictions_file"], index=False, compression="gzip")
        data.update(suite="paper", value=unit_scores(task, table).value("auc"))
        data["data"]["test_ids_sha256"] = ids_hash(table["image_id"].tolist())
        (folder / "rsna_cls" / source.name).write_text(json.dumps(data))
        return Result.model_validate(data)

    return task, folder, table, write


def test_paper_predictions_with_the_label_files_targets_pass(paper_rsna_result):
    task, folder, table, write = paper_rsna_result
    assert len(table) == 5337 and int(table["target:Pneumonia"].sum()) == 1202  # the real test set: 1,202 positives
    scores = checked_scores(task, write(table), folder)
    assert scores.value("auc") == pytest.approx(0.5, abs=0.03)


def test_paper_predictions_with_rewritten_targets_are_refused(paper_rsna_result):
    task, folder, table, write = paper_rsna_result
    table = table.copy()
    table.loc[table.index[:3], "target:Pneumonia"] = 1 - table.loc[table.index[:3], "target:Pneumonia"]
    with pytest.raises(
        ResultCheckError,
        match=r"the targets of 3 of 5337 test images differ from the labels the harness derives \(rsna.csv.gz",
    ):
        checked_scores(task, write(table), folder)
