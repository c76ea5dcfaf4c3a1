"""The pretraining image cache (recipes/pretraining/image_cache.py): the same batches bit for
bit with and without it, content keys (the file actually read, its size and mtime, the resize),
resumable and parallel building, DDP ranks sharing the work, a clear refusal without disk space,
and loader workers that persist across epochs."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.errors import ConfigError, ImageDecodeError
from recipes.pretraining import image_cache
from recipes.pretraining.data import (
    Captioner,
    ImageSpec,
    PairDataset,
    SourceSpec,
    StepBatches,
    collate,
    load_pretraining_pairs,
)
from recipes.pretraining.encoders import load_tokenizer
from recipes.pretraining.image_cache import ImageCache, decode_resized, resolve_cache_dir
from recipes.pretraining.train import _loader, train
import tests.test_pretraining as _pretraining
from tests.test_pretraining import make_synthetic_root, step_losses, tiny_config

tiny_bert = _pretraining.tiny_bert  # the session fixture of tests/test_pretraining.py, shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_images(folder: Path, n: int, size=(90, 70)) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"p1{i}" / f"img{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(p, quality=95)
        paths.append(str(p))
    return paths


def test_cached_items_and_training_losses_are_bit_identical(demo_root, tiny_bert, tmp_path):
    frame = load_pretraining_pairs(demo_root)
    train_frame = frame[frame.subset == "train"].reset_index(drop=True)
    cached = ImageCache(tmp_path / "cache", 40).prepare(list(train_frame.image_path), log=None)
    captioner = Captioner(load_tokenizer(tiny_bert), 32)
    plain = PairDataset(train_frame, captioner, ImageSpec(40, 32), train=True)
    fast = PairDataset(train_frame, captioner, ImageSpec(40, 32), train=True, cached=cached)
    keys = next(iter(StepBatches(len(train_frame), 12, seed=5, epoch=1)))
    a, b = collate([plain[k] for k in keys]), collate([fast[k] for k in keys])
    assert torch.equal(a["image"], b["image"]) and a["image"].shape == (12, 1, 32, 32)
    for i in range(len(train_frame)):  # every cached array is exactly the deterministic part of the transform
        assert np.array_equal(cached[i], decode_resized(train_frame.image_path[i], 40))

    runs = {}
    for name, cache in (("plain", None), ("cached", str(tmp_path / "cache"))):
        train(tiny_config(demo_root, tiny_bert, tmp_path / name, "convirt", max_steps=3, image_cache=cache))
        runs[name] = step_losses(tmp_path / name)
    assert sorted(runs["plain"]) == [1, 2, 3] and runs["cached"] == runs["plain"]  # exactly equal floats


def test_mixed_source_caches_the_file_actually_read(demo_root, tmp_path):
    real = load_pretraining_pairs(demo_root)
    synth_root = make_synthetic_root(real, tmp_path / "synthetic")
    mixed = load_pretraining_pairs(demo_root, SourceSpec("mixed", str(synth_root), 0.5))
    assert 0 < (mixed.image_kind == "synthetic").sum() < len(mixed)
    cache = ImageCache(tmp_path / "cache", 40)
    from_real = cache.prepare(list(real.image_path), log=None)
    lines = []
    from_mixed = cache.prepare(list(mixed.image_path), log=lines.append)
    n_synthetic_files = mixed[mixed.image_kind == "synthetic"].image_path.nunique()  # one synthetic image per study
    assert f"{n_synthetic_files} decoded now" in lines[0]  # the real images were cached already
    for i in range(len(mixed)):
        assert np.array_equal(from_mixed[i], decode_resized(mixed.image_path[i], 40))
        assert np.array_equal(from_mixed[i], from_real[i]) == (
            mixed.image_kind[i] == "real"
        )  # synthetic = inverted image


def test_keys_follow_the_file_size_mtime_and_resize(tmp_path):
    (path,) = write_images(tmp_path / "img", 1)
    key = image_cache.source_key(path, 40)
    assert image_cache.source_key(path, 40) == key and image_cache.source_key(path, 64) != key
    before = ImageCache(tmp_path / "cache", 40).prepare([path], log=None)[0]
    Image.fromarray(np.full((90, 70), 7, np.uint8)).save(path, quality=95)  # replaced in place
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert image_cache.source_key(path, 40) != key
    lines = []
    after = ImageCache(tmp_path / "cache", 40).prepare([path], log=lines.append)[0]
    assert "1 decoded now" in lines[0] and not np.array_equal(before, after)
    assert np.array_equal(after, decode_resized(path, 40))
    with pytest.raises(ImageDecodeError, match="file not found"):
        image_cache.source_key(tmp_path / "missing.jpg", 40)


def test_build_is_resumable_after_a_failure_and_parallel(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img", 11)
    monkeypatch.setattr(image_cache, "SHARD_IMAGES", 4)
    real_decode, calls = image_cache.decode_resized, []

    def failing(path, resize):
        calls.append(path)
        if len(calls) == 10:
            raise ImageDecodeError(path, "simulated crash")
        return real_decode(path, resize)

    monkeypatch.setattr(image_cache, "decode_resized", failing)
    cache = ImageCache(tmp_path / "cache", 40)
    with pytest.raises(ImageDecodeError, match="simulated crash"):
        cache.prepare(paths, log=None)
    folder = tmp_path / "cache" / "resize-40"
    assert len(list(folder.glob("shard-*.json"))) == 2 and not list(
        folder.glob(".*.tmp")
    )  # 2 full shards kept, no debris
    monkeypatch.setattr(image_cache, "decode_resized", real_decode)
    lines = []
    reader = ImageCache(tmp_path / "cache", 40).prepare(paths, workers=2, log=lines.append)  # the rest, in 2 processes
    assert "11 images at 40 px (0.00 GB), 8 already cached, 3 decoded now" in lines[0]
    assert len(reader.shard_files) == 3
    for i, p in enumerate(paths):
        assert np.array_equal(reader[i], real_decode(p, 40))
    meta = json.loads(min(folder.glob("shard-*.json")).read_text())
    assert meta["version"] == image_cache.CACHE_VERSION and meta["resize"] == 40 and len(meta["keys"]) in (3, 4)


def test_ddp_ranks_split_the_shards_and_wait_for_each_other(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img", 10)
    monkeypatch.setattr(image_cache, "SHARD_IMAGES", 3)
    monkeypatch.setattr(image_cache, "WAIT_POLL_S", 0.05)
    barrier, results, logs = threading.Barrier(2), {}, []

    def rank(r):
        results[r] = ImageCache(tmp_path / "cache", 40).prepare(
            paths, rank=r, world=2, barrier=barrier.wait, log=logs.append
        )

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(list((tmp_path / "cache" / "resize-40").glob("shard-*.npy"))) == 4  # 3 + 3 + 3 + 1, each built once
    assert any(
        "10 images at 40 px (0.00 GB), 0 already cached, 6 decoded now" in line for line in logs
    )  # rank 0: shards 0, 2
    for i, p in enumerate(paths):
        assert np.array_equal(results[0][i], results[1][i]) and np.array_equal(results[1][i], decode_resized(p, 40))


def test_refuses_to_start_without_the_disk_space(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img", 3)
    monkeypatch.setattr(image_cache.shutil, "disk_usage", lambda p: type("U", (), {"free": 10_000})())
    with pytest.raises(
        ConfigError, match=r"3 images at 256 px need 0\.\d+ GB, only 0\.00 GB free; point --image-cache"
    ):
        ImageCache(tmp_path / "cache", 256).prepare(paths, log=None)
    assert resolve_cache_dir(None) is None and resolve_cache_dir("auto").name == "pretraining-images"


class PidItems(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, key):
        index, _seed = key
        return {"index": index, "pid": os.getpid()}


def test_loader_workers_persist_across_epochs_with_the_same_batches():
    sampler = StepBatches(16, 4, seed=1)
    loader = _loader(PidItems(), sampler, 2)
    assert loader.persistent_workers
    pids, order = [], []
    for epoch, start in ((0, 0), (1, 0), (2, 1)):
        sampler.epoch, sampler.start = epoch, start
        batches = list(loader)
        pids.append({int(p) for b in batches for p in b["pid"]})
        order.append([b["index"].tolist() for b in batches])
        fresh = [[i for i, _ in b] for b in StepBatches(16, 4, seed=1, epoch=epoch, start=start)]
        assert order[-1] == fresh
    assert len(pids[0]) == 2 and pids[0] == pids[1] == pids[2]  # the same two worker processes every epoch
    assert order[0] != order[1] and len(order[2]) == 3
