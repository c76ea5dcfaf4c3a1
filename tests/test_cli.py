"""End to end through the command line on the demo suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmark.cli import main
from benchmark.results import read_result, read_results
from benchmark.registry import all_tasks

from .cli_args import demo_cli_args

ROOT = Path(__file__).resolve().parents[1]


def demo_args(demo_root, cache, output, encoder="random:resnet_tiny", *extra):
    tasks = [] if "--tasks" in extra else ["--tasks", "classification"]
    return demo_cli_args(demo_root, cache, output, *tasks, *extra, encoder=encoder)


@pytest.fixture(scope="module")
def demo_run(demo_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cli-cache")
    output = tmp_path_factory.mktemp("cli-out") / "run"
    assert main(demo_args(demo_root, cache, output)) == 0
    return cache, output


def test_demo_run_writes_one_result_per_unit_with_provenance(demo_run):
    _, output = demo_run
    results = read_results(output)
    units = sorted((r.unit.task, r.unit.fraction, r.unit.seed) for r in results)
    assert units == [(t, f, 0) for t in ("chexpert_cls", "covidx_cls", "rsna_cls") for f in (1, 10, 100)]
    for r in results:
        assert 0.0 <= r.value <= 1.0 and r.suite == "demo"
        assert r.encoder["sha256"] and r.encoder["arch"] == "resnet_tiny"
        assert len(r.data["manifest_sha256"]) == 64 and len(r.data["train_ids_sha256"]) == 64
        assert r.provenance["packages"]["torch"].startswith("2.14.1")
        # the demo suite's probe learning rate (benchmark/suites.py); the task's recipe keeps MGCA's 5e-4
        # and its 300-epoch cap (the recipe's is 50); early stopping ends the probe before it
        assert r.hyperparameters["probe"]["lr"] == 5e-3 and r.hyperparameters["probe"]["batch_size"] == 48
        assert r.hyperparameters["probe"]["max_epochs"] == 300
        assert all_tasks()[r.unit.task].probe.lr == 5e-4 and all_tasks()[r.unit.task].probe.max_epochs == 50
        assert r.training["best_epoch"] <= r.training["epochs_run"] < 300 and r.timings["probe"] > 0


def test_predictions_recompute_the_reported_metric(demo_run):
    _, output = demo_run
    result = read_result(output / "rsna_cls" / "rsna_cls_frac100_seed0.json")
    predictions = pd.read_csv(output / "rsna_cls" / result.predictions_file)
    assert len(predictions) == result.data["n_test"]
    assert roc_auc_score(predictions["target:Pneumonia"], predictions["prob:pneumonia"]) == pytest.approx(
        result.value, abs=1e-9
    )
    covidx = read_result(output / "covidx_cls" / "covidx_cls_frac100_seed0.json")
    frame = pd.read_csv(output / "covidx_cls" / covidx.predictions_file)
    probs = frame[[c for c in frame.columns if c.startswith("prob:")]].to_numpy()
    assert np.mean(probs.argmax(1) == frame["target:label"].to_numpy()) == pytest.approx(covidx.value)


def test_rerun_skips_finished_units_and_resumes_missing_ones(demo_root, demo_run, capsys):
    cache, output = demo_run
    stamps = {p: p.stat().st_mtime_ns for p in output.glob("*/*.json")}
    capsys.readouterr()
    assert main(demo_args(demo_root, cache, output)) == 0
    out = capsys.readouterr().out
    assert "9 of 9 units already finished" in out
    assert {p: p.stat().st_mtime_ns for p in output.glob("*/*.json")} == stamps
    # a "killed" run: two units never finished
    (output / "rsna_cls" / "rsna_cls_frac10_seed0.json").unlink()
    (output / "chexpert_cls" / "chexpert_cls_frac1_seed0.json").unlink()
    assert main(demo_args(demo_root, cache, output)) == 0
    out = capsys.readouterr().out
    assert "7 of 9 units already finished" in out and "running 2" in out
    assert "[1/2] chexpert_cls 1% seed 0" in out and "[2/2] rsna_cls 10% seed 0" in out


def test_interrupted_run_resumes_only_missing_units(demo_root, tmp_path, monkeypatch, capsys):
    import benchmark.families.classification as classification

    real = classification.run_unit
    calls = {"n": 0}

    def dies_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(classification, "run_unit", dies_on_third)
    args = demo_args(demo_root, tmp_path / "cache", tmp_path / "out", "random:resnet_tiny", "--tasks", "rsna_cls")
    assert main(args) == 130
    assert len(list((tmp_path / "out").glob("*/*.json"))) == 2
    monkeypatch.setattr(classification, "run_unit", real)
    capsys.readouterr()
    assert main(args) == 0
    assert "2 of 3 units already finished" in capsys.readouterr().out
    assert len(list((tmp_path / "out").glob("*/*.json"))) == 3


def test_other_encoder_into_same_output_is_refused(demo_root, demo_run, capsys):
    cache, output = demo_run
    assert main(demo_args(demo_root, cache, output, "random:resnet_tiny@1", "--tasks", "rsna_cls")) == 2
    err = capsys.readouterr().err
    assert "different encoder" in err and "One results folder holds one encoder" in err
    # also for units the folder does not hold yet (another task, another seed), and with --overwrite
    for extra in (["--tasks", "covidx_cls", "--seeds", "7"], ["--tasks", "rsna_cls", "--overwrite"]):
        before = sorted(output.glob("*/*"))
        assert main(demo_args(demo_root, cache, output, "random:resnet_tiny@1", *extra)) == 2
        assert "different encoder" in capsys.readouterr().err
        assert sorted(output.glob("*/*")) == before


def test_same_seed_same_numbers_and_cache_reuse(demo_root, demo_run, tmp_path):
    cache, output = demo_run
    again = tmp_path / "again"
    assert main(demo_args(demo_root, cache, again, "random:resnet_tiny", "--tasks", "covidx_cls")) == 0
    for path in again.glob("*/*.json"):
        first, second = read_result(output / path.parent.name / path.name), read_result(path)
        assert second.value == first.value
        assert all(stats["computed"] == 0 for stats in second.training["feature_cache"].values())  # all from cache


def test_sharded_runs_fill_one_grid(demo_root, demo_run, tmp_path):
    cache, _ = demo_run
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        assert (
            main(demo_args(demo_root, cache, out, "random:resnet_tiny", "--tasks", "rsna_cls", "--shard", shard)) == 0
        )
    assert {p.name for p in out.glob("rsna_cls/*.json")} == {f"rsna_cls_frac{f}_seed0.json" for f in (1, 10, 100)}


def test_better_encoder_scores_higher_on_demo(demo_root, demo_run, tmp_path):
    _, random_out = demo_run
    out = tmp_path / "intensity"
    assert (
        main(demo_args(demo_root, tmp_path / "c", out, "models.baselines:regional_intensity", "--fractions", "100"))
        == 0
    )
    for task in ("chexpert_cls", "rsna_cls", "covidx_cls"):
        good = read_result(out / task / f"{task}_frac100_seed0.json").value
        rand = read_result(random_out / task / f"{task}_frac100_seed0.json").value
        assert good > rand, (task, good, rand)


def test_demo_one_percent_subsets_hold_every_class(demo_root, demo_run):
    from benchmark.registry import all_tasks
    from benchmark.suites import demo_suite
    from benchmark.task_data import load_task_data

    cache, _ = demo_run
    suite = demo_suite(demo_root, generate=False)
    for task in all_tasks().values():
        if task.family != "classification":
            continue
        data = load_task_data(task, suite, cache)
        train = data.records.loc[data.train_ids(1, 0), list(task.label_columns)]
        if task.multilabel or len(task.label_columns) > 1 or task.num_outputs == 1:
            assert (train.sum() > 0).all(), task.id
        else:
            assert set(train.iloc[:, 0]) == set(range(len(task.classes))), task.id


def test_list_tasks(demo_root, capsys):
    assert main(["--list-tasks", "--suite", "demo", "--demo-root", str(demo_root)]) == 0
    out = capsys.readouterr().out
    for task in ("chexpert_cls", "rsna_cls", "covidx_cls"):
        assert task in out
    assert "classification" in out and "yes (" in out and "auc" in out and "accuracy" in out


def test_missing_dataset_is_a_clear_error_not_a_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_benchmark.py"),
            "--encoder",
            "random:resnet_tiny",
            "--data-root",
            str(tmp_path),
            "--tasks",
            "chexpert_cls,rsna_cls",
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "CheXpert-v1.0-small" in proc.stderr and "stage_2_train_labels.csv" in proc.stderr
    assert "kaggle.com" in proc.stderr and "stanfordaimi" in proc.stderr


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    import torch

    torch.save({"state_dict": {"some.weight": torch.zeros(3)}}, tmp_path / "bad.ckpt")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_benchmark.py"),
            "--encoder",
            str(tmp_path / "bad.ckpt"),
            "--suite",
            "demo",
            "--demo-root",
            str(tmp_path / "nodemo"),
            "--tasks",
            "rsna_cls",
            "--list-tasks",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0  # --list-tasks needs no encoder and generates nothing
    assert not (tmp_path / "nodemo" / "DEMO_SUITE.txt").exists()


@pytest.fixture(scope="module")
def checkpoint_files(tmp_path_factory):
    """One tiny checkpoint per listed format, with the official key layouts."""
    import torch
    from torchvision.models.resnet import BasicBlock, ResNet

    from tests.test_encoders import timm_tiny_vit

    folder = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    resnet = ResNet(BasicBlock, [1, 1, 1, 1])
    state = resnet.state_dict()
    files = {"torchvision": folder / "tv.pth"}
    torch.save(state, files["torchvision"])
    for method, prefix in {
        "mgca": "img_encoder_q.model.",
        "convirt": "img_encoder.model.",
        "gloria": "gloria.img_encoder.model.",
        "benchx": "visual.model.",
        "mflag": "encoder.",
        "g2d": "backbone.",
    }.items():
        files[method] = folder / f"{method}.ckpt"
        payload = {prefix + k: v for k, v in state.items()}
        payload["text_encoder.embeddings.weight"] = torch.zeros(10, 4)  # non-backbone tensors are ignored
        torch.save({"state_dict": payload, "epoch": 3}, files[method])
    vit = timm_tiny_vit()
    files["timm_vit"] = folder / "vit.pth"
    torch.save(vit.state_dict(), files["timm_vit"])
    scripted = torch.jit.script(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    )
    files["torchscript"] = folder / "scripted.pt"
    scripted.save(str(files["torchscript"]))
    return files


@pytest.mark.parametrize(
    "fmt", ["torchvision", "mgca", "convirt", "gloria", "benchx", "mflag", "g2d", "timm_vit", "torchscript"]
)
def test_every_checkpoint_format_scores_through_the_cli(demo_root, demo_run, checkpoint_files, tmp_path, fmt):
    cache, _ = demo_run
    out = tmp_path / "out"
    assert (
        main(demo_args(demo_root, cache, out, str(checkpoint_files[fmt]), "--tasks", "rsna_cls", "--fractions", "100"))
        == 0
    )
    result = read_result(out / "rsna_cls" / "rsna_cls_frac100_seed0.json")
    assert 0 <= result.value <= 1 and len(result.encoder["sha256"]) == 64
    if fmt in ("mgca", "convirt", "gloria", "benchx", "mflag", "g2d"):
        assert result.encoder["method_hint"] == fmt


def test_half_renamed_checkpoint_is_refused_by_the_cli(demo_root, demo_run, checkpoint_files, tmp_path, capsys):
    import torch

    state = torch.load(checkpoint_files["torchvision"], weights_only=True)
    keys = sorted(state)
    broken = {(f"renamed.{k}" if i % 2 else k): v for i, (k, v) in enumerate(sorted(state.items()))}
    torch.save(broken, tmp_path / "broken.pth")
    cache, _ = demo_run
    assert main(demo_args(demo_root, cache, tmp_path / "o", str(tmp_path / "broken.pth"), "--tasks", "rsna_cls")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--allow-partial-load" in err
    assert "31 of 60 backbone tensors found, 29 missing" in err
    renamed = [k for i, k in enumerate(keys) if i % 2 and not k.endswith("num_batches_tracked")]
    plain = [k for i, k in enumerate(keys) if not i % 2 and not k.endswith("num_batches_tracked")]
    assert plain[0] in err or renamed[0] in err  # the message names the keys that did not load


def test_progress_bars_follow_the_terminal_unless_forced(monkeypatch):
    """A batch-job log (stderr not a terminal) gets no bars unless --progress asks for them."""
    import argparse

    from benchmark.cli import show_progress

    def args(**flags):
        return argparse.Namespace(progress=flags.get("progress", False), no_progress=flags.get("no_progress", False))

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert (show_progress(args()), show_progress(args(progress=True)), show_progress(args(no_progress=True))) == (
        False,
        True,
        False,
    )
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert (show_progress(args()), show_progress(args(no_progress=True))) == (True, False)
