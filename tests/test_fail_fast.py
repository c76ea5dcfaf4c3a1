"""A careless user gets one clear line and exit status 2 before any encoder work, and never
stale or silently replaced values: bad numbers, unwritable outputs, a full disk, missing and
broken images, stray temporary files, and changed images behind the same ids."""

from __future__ import annotations

import os
import shutil
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.results import read_result

from .cli_args import demo_cli_args


def args_for(demo_root, cache, output, *extra, tasks="covidx_cls"):
    return demo_cli_args(demo_root, cache, output, "--tasks", tasks, *extra)


@pytest.fixture
def demo_copy(demo_root, tmp_path):
    """A private copy of the shared demo suite, safe to modify."""
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    return root


@pytest.fixture
def no_encoder_work(monkeypatch):
    """Fail the test if anything reaches the encoder's forward pass."""
    import benchmark.features as features

    def forbidden(*args, **kwargs):
        raise AssertionError("the encoder ran before the error was reported")

    monkeypatch.setattr(features, "encode_batch", forbidden)


def computed_features(cache: Path) -> list[Path]:
    return sorted(Path(cache).rglob("features.f16"))


def split_paths(root: Path, cache: Path, task_id: str, split: str) -> list[str]:
    from benchmark.registry import all_tasks
    from benchmark.suites import demo_suite
    from benchmark.task_data import load_task_data

    data = load_task_data(all_tasks()[task_id], demo_suite(root, generate=False), cache)
    return data.records.loc[data.split_ids[split], "path"].astype(str).tolist()


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------- 1. numbers
@pytest.mark.parametrize(
    "option, value, allowed",
    [
        ("--limit", "0", ">= 1"),
        ("--limit", "-1", ">= 1"),
        ("--batch-size", "0", ">= 1"),
        ("--train-views", "0", ">= 1"),
        ("--seeds", "-1", ">= 0"),
        ("--workers", "-1", ">= 0"),
        ("--fractions", "0,10", "between 1 and 100"),
        ("--fractions", "101", "between 1 and 100"),
        ("--seeds", "0,0", "twice"),
        ("--limit", "ten", ">= 1"),
    ],
)
def test_bad_numbers_are_one_line_exit_2(demo_root, tmp_path, capsys, no_encoder_work, option, value, allowed):
    with pytest.raises(SystemExit) as stop:
        main(args_for(demo_root, tmp_path / "c", tmp_path / "o", option, value))
    assert stop.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: argument {option}:") and allowed in line
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_fraction_a_task_lacks_is_refused_before_the_encoder_loads(demo_root, tmp_path, capsys, monkeypatch):
    import models.loading

    monkeypatch.setattr(models.loading, "load_encoder", lambda *a, **k: pytest.fail("encoder loaded"))
    assert main(args_for(demo_root, tmp_path / "c", tmp_path / "o", "--fractions", "5")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--fractions 5" in line and "covidx_cls has no 5% label fraction (it has 1, 10, 100)" in line


# ---------------------------------------------------------------------------- 2. outputs, disk, data
def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this user cannot create files in: a 0o555 folder, or (as root, who may write
    there anyway) a path under a regular file."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return folder / "run"
    plain = tmp_path / "a-file"
    plain.write_text("not a folder\n")
    return plain / "run"


@pytest.mark.parametrize("which", ["--output", "--cache-dir"])
def test_unwritable_output_or_cache_is_refused_before_any_unit(demo_root, tmp_path, capsys, no_encoder_work, which):
    bad = unwritable_folder(tmp_path)
    cache, output = (tmp_path / "cache", bad) if which == "--output" else (bad, tmp_path / "out")
    try:
        assert main(args_for(demo_root, cache, output)) == 2
    finally:
        (tmp_path / "read-only").chmod(0o755)
    line = one_error_line(capsys.readouterr().err)
    assert which in line and str(bad) in line and ("not writable" in line or "is a file" in line)
    assert not list(tmp_path.rglob("*.json")) and not computed_features(tmp_path)


def test_demo_root_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    plain = tmp_path / "demo.txt"
    plain.write_text("x\n")
    assert main(args_for(plain, tmp_path / "c", tmp_path / "o")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"--demo-root {plain} is a file, not a folder" in line


def test_insufficient_disk_for_the_feature_cache_is_refused_with_the_numbers(
    demo_root, tmp_path, capsys, monkeypatch, no_encoder_work
):
    import benchmark.runner as runner

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5000, 5000))
    assert main(args_for(demo_root, tmp_path / "c", tmp_path / "o", "--fractions", "100")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "not enough free disk for the feature cache" in line and "0.0 MB are free" in line
    assert "covidx_cls train:" in line and "x 2 view(s) x" in line and "x 2 B =" in line
    assert not computed_features(tmp_path / "c")


def test_pyramid_caches_count_in_the_disk_estimate(demo_root, tmp_path, capsys, monkeypatch, no_encoder_work):
    """Detection pyramids (every split) and segmentation val/test pyramids that go to disk
    (here: a memory budget of 0) are estimated before any encoding, with exact byte counts:
    random:resnet_tiny at the demo's 96 px (detection levels 2-4) and 64 px (segmentation)."""
    import benchmark.families.segmentation as segmentation
    import benchmark.runner as runner
    from benchmark.registry import all_tasks
    from benchmark.suites import demo_suite
    from benchmark.task_data import load_task_data

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5000, 5000))
    monkeypatch.setattr(segmentation, "MEMORY_BUDGET", 0)
    cache = tmp_path / "c"
    assert main(args_for(demo_root, cache, tmp_path / "o", "--fractions", "100", tasks="objectcxr_det,siim_seg")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "not enough free disk for the feature cache" in line
    suite = demo_suite(demo_root, generate=False)
    det = load_task_data(all_tasks()["objectcxr_det"], suite, cache)
    seg = load_task_data(all_tasks()["siim_seg"], suite, cache)
    from models.loading import load_encoder

    encoder = load_encoder("random:resnet_tiny").encoder.eval()
    import torch

    def values(size, levels):
        with torch.inference_mode():
            maps = encoder.forward_pyramid(encoder.prepare(torch.zeros(1, 1, size, size)))
        return sum(maps[i][0].numel() for i in levels)

    det_values = values(96, all_tasks()["objectcxr_det"].recipe.out_indices)
    n_train = len(det.split_ids["train"])
    assert f"objectcxr_det train pyramids: {n_train:,} images x {det_values:,} values x 2 B" in line, line
    seg_test = len(seg.split_ids["test"]) * values(64, range(len(encoder.pyramid_channels))) * 2
    assert f"siim_seg test pyramids: {seg_test / 1e6:,.1f} MB" in line, line
    assert not computed_features(cache) and not list(cache.rglob("level0.f16"))


def test_missing_test_image_is_refused_before_encoding(demo_copy, tmp_path, capsys, no_encoder_work):
    cache = tmp_path / "cache"
    victim = split_paths(demo_copy, cache, "covidx_cls", "test")[-1]
    os.unlink(victim)
    assert main(args_for(demo_copy, cache, tmp_path / "out")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "covidx_cls: 1 of the" in line and "test image file(s) this run reads are missing" in line and victim in line
    assert not computed_features(cache) and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- 3. broken images
@pytest.mark.parametrize(
    "task_id, suffix, cut, cause",
    [
        ("rsna_cls", ".dcm", 3, "truncated or corrupted DICOM ("),  # native pixel data cut short
        ("rsna_cls", ".dcm", None, "truncated or corrupted DICOM header ("),  # 200 bytes left
        ("siim_seg", ".dcm", 2, "truncated or corrupted DICOM ("),  # compressed: no sequence delimiter at its end
        ("chexpert_cls", ".jpg", 2, "truncated JPEG ("),
        ("covidx_cls", ".png", 2, "truncated PNG ("),
    ],
)
def test_truncated_images_anywhere_in_a_split_are_refused_before_encoding(
    demo_copy, tmp_path, capsys, no_encoder_work, task_id, suffix, cut, cause
):
    """Every image file's header and end are checked before the encoder runs, not only the
    first of each split: a truncated file in the MIDDLE of the test split is named, with the
    count, before any feature is computed."""
    cache = tmp_path / "cache"
    paths = [p for p in split_paths(demo_copy, cache, task_id, "test") if p.endswith(suffix)]
    victim = paths[len(paths) // 2]
    data = Path(victim).read_bytes()
    Path(victim).write_bytes(data[: len(data) // cut] if cut else data[:200])
    assert main(args_for(demo_copy, cache, tmp_path / "out", "--fractions", "100", tasks=task_id)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot read image {victim}: {cause}"), line
    assert suffix != ".dcm" or task_id != "siim_seg" or "does not end with the sequence delimiter" in line
    assert (
        f"checked before encoding: 1 of the {len(split_paths(demo_copy, cache, task_id, 'test'))} "
        f"test image file(s) of {task_id} fail" in line
    )
    assert not computed_features(cache) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("workers", ["0", "1"])
def test_image_corrupt_inside_is_one_line_naming_the_file(demo_copy, tmp_path, capsys, workers):
    """A compressed DICOM whose JPEG stream is zeroed but whose header and end are intact
    passes the pre-flight check and fails when decoded, in the DataLoader (a worker process
    with --workers 1): one line naming the file and the cause."""
    cache = tmp_path / "cache"
    victim = split_paths(demo_copy, cache, "siim_seg", "test")[3]
    data = bytearray(Path(victim).read_bytes())
    start = data.find(b"\xff\xd8\xff")  # the encapsulated JPEG's start
    data[start : len(data) - 16] = bytes(len(data) - 16 - start)
    Path(victim).write_bytes(bytes(data))
    args = args_for(demo_copy, cache, tmp_path / "out", "--fractions", "100", "--limit", "12", tasks="siim_seg")
    args[args.index("--workers") + 1] = workers
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot read image {victim}: corrupted compressed pixel data (JPEG Baseline"), line
    assert "pip install" not in line


def test_first_image_of_a_split_is_decoded_before_encoding(demo_copy, tmp_path, capsys, no_encoder_work):
    cache = tmp_path / "cache"
    victim = split_paths(demo_copy, cache, "covidx_cls", "val")[0]
    Path(victim).write_bytes(b"<html>not an image</html>")
    assert main(args_for(demo_copy, cache, tmp_path / "out")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot read image {victim}: not a readable PNG/JPEG image")


def test_decode_error_keeps_its_type_and_one_line_through_a_dataloader_worker(tmp_path):
    from torch.utils.data import DataLoader

    from benchmark.errors import BenchmarkError, ImageDecodeError
    from benchmark.features import ViewDataset, ViewPlan
    from benchmark.preprocess import PreprocessSpec

    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"hello")
    dataset = ViewDataset([str(bad)], ["x"], PreprocessSpec(resize=32, crop=32), ViewPlan(train=False))
    with pytest.raises(ImageDecodeError) as caught:
        list(DataLoader(dataset, num_workers=1))
    assert str(caught.value) == f"cannot read image {bad}: " + caught.value.cause and caught.value.path == str(bad)
    assert "not a DICOM file" in caught.value.cause and "\n" not in str(caught.value)
    assert isinstance(caught.value, BenchmarkError)


# ---------------------------------------------------------------------------- 4. temporary files
def test_failed_atomic_write_leaves_no_temp_file(tmp_path):
    from benchmark.atomic import atomic_write

    target = tmp_path / "sub" / "result.json"

    def disk_full(tmp):
        Path(tmp).write_text("half of a fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, disk_full)
    assert list((tmp_path / "sub").iterdir()) == []


def test_rerun_removes_stale_temp_files_of_killed_writes(demo_root, tmp_path, capsys):
    cache, output = tmp_path / "cache", tmp_path / "out"
    args = args_for(demo_root, cache, output, "--fractions", "100", "--limit", "12")
    assert main(args) == 0
    folder = output / "covidx_cls"
    hour_old = time.time() - 7200
    dead = folder / ".covidx_cls_frac100_seed0.json.99999999.tmp"  # pid not alive, untouched 2 min
    old = folder / ".covidx_cls_frac100_seed0.predictions.csv.gz.tmp"  # no pid, 2 h old
    live = folder / f".covidx_cls_frac100_seed0.json.{os.getpid()}.tmp"  # a writer still running
    fresh_dead = output / ".other.json.99999999.tmp"  # just written (maybe on another machine)
    unrelated = folder / "notes.tmp"
    for path in (dead, old, live, fresh_dead, unrelated):
        path.write_text("partial")
    os.utime(dead, (time.time() - 120, time.time() - 120))
    os.utime(old, (hour_old, hour_old))
    os.utime(live, (time.time() - 600, time.time() - 600))  # 10 min old, pid alive: kept
    capsys.readouterr()
    assert main(args) == 0
    assert "removed 2 stale temporary file(s)" in capsys.readouterr().out
    assert not dead.exists() and not old.exists()
    assert live.exists() and fresh_dead.exists() and unrelated.exists()


# ---------------------------------------------------------------------------- 5. content-keyed cache
def test_changed_image_behind_the_same_id_is_not_served_from_the_cache(demo_copy, tmp_path):
    """Same ids, other bytes (same size, mtime restored): new cache key, features recomputed;
    an untouched rerun reuses the cache."""
    cache = tmp_path / "cache"

    def args(out):
        return args_for(demo_copy, cache, tmp_path / out, "--fractions", "100", "--limit", "16", tasks="rsna_cls")

    assert main(args("clean")) == 0
    clean = read_result(tmp_path / "clean" / "rsna_cls" / "rsna_cls_frac100_seed0.json")

    victim = Path(split_paths(demo_copy, cache, "rsna_cls", "test")[2])
    before = victim.stat()
    data = bytearray(victim.read_bytes())
    tail = np.frombuffer(bytes(data[-4096:]), dtype=np.uint8)
    data[-4096:] = (255 - tail).tobytes()  # pixel data (uncompressed DICOM): same size, other image
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert victim.stat().st_size == before.st_size and victim.stat().st_mtime_ns == before.st_mtime_ns

    assert main(args("changed")) == 0
    changed = read_result(tmp_path / "changed" / "rsna_cls" / "rsna_cls_frac100_seed0.json")
    cache_clean, cache_changed = clean.training["feature_cache"], changed.training["feature_cache"]
    assert cache_changed["test"]["key"] != cache_clean["test"]["key"] and cache_changed["test"]["computed"] > 0
    assert cache_changed["train"]["key"] == cache_clean["train"]["key"] and cache_changed["train"]["computed"] == 0

    # the finished result of the clean images is not reused for the changed ones either
    assert main(args("clean")) == 2

    assert main(args("again")) == 0
    again = read_result(tmp_path / "again" / "rsna_cls" / "rsna_cls_frac100_seed0.json")
    assert all(stats["computed"] == 0 for stats in again.training["feature_cache"].values())
    assert {s: v["key"] for s, v in again.training["feature_cache"].items()} == {
        s: v["key"] for s, v in cache_changed.items()
    }
    assert again.value == changed.value
