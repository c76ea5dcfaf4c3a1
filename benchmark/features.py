"""Frozen-encoder features, computed once per image and view, cached on disk in fp16.

A frozen encoder must not run once per epoch. Features of a split are stored in a
content-addressed cache entry whose key hashes everything that determines them: the
checkpoint's sha256 and architecture/input contract, the preprocessing, the view seeds, the
split's image ids (and manifest hash), the split's image content (:func:`content_digest`)
and ``FEATURE_VERSION`` of this code. Nothing is keyed by a model name.

An entry is a folder holding ``features.f16`` (a float16 memmap of shape
(views, images, dim)), ``done.npy`` (which images are finished) and ``meta.json``. Rows are
computed on demand (a 1% run encodes only its images) and flushed in chunks, so a killed
extraction resumes where it stopped. Entries are locked while written, so shards that share
a cache wait for each other instead of computing twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .atomic import atomic_write_text
from .errors import ImageDecodeError
from .images import read_grey
from .preprocess import PreprocessSpec, fit_square, preprocess

FEATURE_VERSION = 1
CONTENT_CHUNK = 64 * 1024  # bytes hashed at each end of an image file by content_digest


_FILE_FINGERPRINTS: dict[str, tuple[tuple, str]] = {}


def file_fingerprint(path: str) -> str:
    """``"size:mtime_ns:sha256(first 64 KiB + last 64 KiB)"`` of one image file.

    Memoised per process by (size, mtime_ns, ctime_ns, inode, device): a file that has not
    changed is only stat-ed again."""
    path = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    memo = _FILE_FINGERPRINTS.get(path)
    if memo is not None and memo[0] == signature:
        return memo[1]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(CONTENT_CHUNK))
        if st.st_size > CONTENT_CHUNK:
            handle.seek(max(CONTENT_CHUNK, st.st_size - CONTENT_CHUNK))
            digest.update(handle.read(CONTENT_CHUNK))
    value = f"{st.st_size}:{st.st_mtime_ns}:{digest.hexdigest()}"
    _FILE_FINGERPRINTS[path] = (signature, value)
    return value


def content_digest(paths: list[str], *, portable: bool = False) -> str:
    """sha256 over the :func:`file_fingerprint` of every image of a split, in order.

    ``portable``: leave the mtimes out (size and first/last 64 KiB only), so the digest of
    the same image bytes is the same on every machine and after a copy that does not keep
    mtimes. Unit keys use it (a committed or copied result stays reusable wherever the same
    images are); feature-cache keys, which never leave the machine, keep the mtime as an
    extra guard against edits in the middle of a file.

    Goes into feature-cache keys beside the image ids, so a data folder whose images
    changed (same ids, other bytes: re-exported, corrupted, another version) never reuses
    features of the old ones. Rule per file: its size, its mtime_ns and a sha256 of its
    first and last 64 KiB (the whole file when it is smaller than 128 KiB). Cost: one stat
    and at most 128 KiB read per image, on 8 threads, once per process (later calls only
    stat); a change in the middle of a large file that keeps its size and mtime goes
    unnoticed. Touching or copying the data without preserving mtimes recomputes features."""
    paths = [str(p) for p in paths]
    unseen = [p for p in paths if p not in _FILE_FINGERPRINTS]
    if len(unseen) >= 256:  # first reads: overlap the I/O (a network file system, a cold disk)
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in pool.map(file_fingerprint, unseen, chunksize=64):
                pass
    prints = [file_fingerprint(p) for p in paths]  # memoised: a stat per file
    if portable:  # "size:mtime_ns:sha256" -> "size:sha256"
        prints = [f"{size}:{head_tail}" for size, _, head_tail in (p.split(":") for p in prints)]
    return hashlib.sha256("\n".join(prints).encode()).hexdigest()


def view_seed(base: int, image_id: str, view: int) -> int:
    """Seed of one augmented training view: independent of batch, worker and order."""
    digest = hashlib.sha256(f"{base}\x00{image_id}\x00{view}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class ViewPlan:
    """Which views of each image are encoded: ``train`` views are random crops/augmentations
    (``count`` of them, seeded by ``seed``), otherwise one deterministic centre crop."""

    train: bool
    count: int = 1
    seed: int = 0
    epoch: int | None = None  # exact mode: fresh augmentation per epoch

    def seeds_for(self, image_id: str) -> list[int | None]:
        if not self.train:
            return [None]
        base = self.seed if self.epoch is None else self.seed * 1_000_003 + self.epoch + 1
        return [view_seed(base, image_id, v) for v in range(self.count)]


class ViewDataset(Dataset):
    """Decodes each image once and returns all its views as a (views, 1, crop, crop) tensor."""

    def __init__(self, paths: list[str], image_ids: list[str], spec: PreprocessSpec, plan: ViewPlan):
        self.paths, self.image_ids, self.spec, self.plan = paths, image_ids, spec, plan

    def __len__(self) -> int:
        return len(self.paths)

    def content_digest(self) -> str:
        """:func:`content_digest` of this dataset's image files (for cache keys)."""
        return content_digest(self.paths)

    def __getitem__(self, index: int):
        padded = fit_square(read_grey(self.paths[index]), self.spec.resize, self.spec.geometry)
        views = [
            preprocess(padded, self.spec, train=self.plan.train, seed=seed, padded=True)
            for seed in self.plan.seeds_for(self.image_ids[index])
        ]
        return index, torch.stack(views)


def autocast_context(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def encode_batch(encoder, images: torch.Tensor, device: torch.device, upsample: float | None) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, D) global features (float32)."""
    images = images.to(device, non_blocking=True)
    x = encoder.prepare(images)
    if upsample and upsample != 1.0:
        size = int(round(x.shape[-1] * upsample))
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
    with autocast_context(device):
        return encoder.forward_global(x).float()


def iterate_features(
    encoder, dataset: ViewDataset, indices: list[int], *, device, batch_size, workers, upsample, desc, progress=True
):
    """Yield (dataset indices, features (n, views, D)) for ``indices``, with a progress bar."""
    subset = torch.utils.data.Subset(dataset, indices)
    loader = DataLoader(
        subset,
        batch_size=max(1, batch_size // max(1, dataset.plan.count)),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    with tqdm(total=len(indices), desc=desc, unit="img", dynamic_ncols=True, leave=False, disable=not progress) as bar:
        for batch_indices, views in loader:
            n, v = views.shape[:2]
            feats = encode_batch(encoder, views.flatten(0, 1), device, upsample)
            yield batch_indices.tolist(), feats.view(n, v, -1).cpu()
            bar.update(n)


@contextlib.contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):  # the save failed (e.g. a full disk): no stray temp file
            tmp.unlink(missing_ok=True)


class FeatureCache:
    """Content-addressed on-disk store of fp16 feature arrays."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(parts: dict) -> str:
        payload = json.dumps({"feature_version": FEATURE_VERSION, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def features(
        self,
        key_parts: dict,
        encoder,
        dataset: ViewDataset,
        needed: list[int],
        *,
        device,
        batch_size: int,
        workers: int,
        upsample: float | None,
        desc: str,
        progress: bool = True,
        flush_every: int = 2048,
    ) -> tuple[np.ndarray, dict]:
        """Return a (views, len(dataset), D) fp16 memmap whose ``needed`` rows are computed.

        Also returns stats: how many rows were computed now and how many came from the cache.
        """
        key = self.key(key_parts)
        folder = self.entry(key)
        with file_lock(self.root / ".locks" / f"{key}.lock"):
            folder.mkdir(parents=True, exist_ok=True)
            meta_path, done_path, data_path = folder / "meta.json", folder / "done.npy", folder / "features.f16"
            views, n = dataset.plan.count, len(dataset)
            if meta_path.is_file():
                meta = json.loads(meta_path.read_text())
                dim = meta["dim"]
                done = np.load(done_path) if done_path.is_file() else np.zeros(n, dtype=bool)
            else:
                meta, dim, done = None, None, np.zeros(n, dtype=bool)
            todo = [i for i in needed if not done[i]]
            stats = {"computed": len(todo), "cached": len(needed) - len(todo), "key": key}
            if not todo:
                return np.memmap(data_path, dtype=np.float16, mode="r", shape=(views, n, dim)), stats
            array = np.memmap(data_path, dtype=np.float16, mode="r+", shape=(views, n, dim)) if meta else None
            since_flush = 0
            for batch_indices, feats in iterate_features(
                encoder,
                dataset,
                todo,
                device=device,
                batch_size=batch_size,
                workers=workers,
                upsample=upsample,
                desc=desc,
                progress=progress,
            ):
                if array is None:
                    dim = feats.shape[-1]
                    array = np.memmap(data_path, dtype=np.float16, mode="w+", shape=(views, n, dim))
                    meta = {"key_parts": key_parts, "dim": dim, "views": views, "images": n, "created": time.time()}
                    atomic_write_text(
                        meta_path, json.dumps(meta, indent=1, sort_keys=True, default=str)
                    )  # never half a meta.json
                array[:, batch_indices, :] = feats.permute(1, 0, 2).numpy().astype(np.float16)
                done[batch_indices] = True
                since_flush += len(batch_indices)
                if since_flush >= flush_every:
                    array.flush()
                    _atomic_save_npy(done_path, done)
                    since_flush = 0
            array.flush()
            _atomic_save_npy(done_path, done)
            return np.memmap(data_path, dtype=np.float16, mode="r", shape=(views, n, dim)), stats


def compute_in_memory(
    encoder, dataset: ViewDataset, needed: list[int], *, device, batch_size, workers, upsample, desc, progress=True
) -> np.ndarray:
    """Exact mode (``--no-feature-cache``): encode ``needed`` rows now, keep nothing on disk.

    Returns a float32 array (views, len(needed), D) in the order of ``needed``."""
    position = {index: k for k, index in enumerate(needed)}
    out = None
    for batch_indices, feats in iterate_features(
        encoder,
        dataset,
        needed,
        device=device,
        batch_size=batch_size,
        workers=workers,
        upsample=upsample,
        desc=desc,
        progress=progress,
    ):
        if out is None:
            out = np.zeros((feats.shape[1], len(needed), feats.shape[2]), dtype=np.float32)
        out[:, [position[i] for i in batch_indices], :] = feats.permute(1, 0, 2).numpy()
    return out
