"""Pretraining image cache: every image is decoded and resized ONCE, then each epoch reads it.

What is cached is exactly the deterministic part of the pretraining transform,
:func:`decode_resized` (read the file as 8-bit grey, longer side -> ``resize`` with INTER_AREA,
zero-pad to a square), which :class:`recipes.pretraining.data.ImageSpec` also calls when there
is no cache. Crops, normalisation and anything random stay per step, so a run with the cache
sees the same batches bit for bit and trains to the same losses.

Layout (``<DIR>/resize-<R>/``):

- ``shard-<id>.npy``: a uint8 array (n, R, R), read as a memory map; written to a temporary file
  and renamed, so a shard is complete or absent;
- ``shard-<id>.json``: its index (written after the ``.npy``): the key and source path of each
  row. The index of the cache is the union of these files.

An image's key is a sha256 over this code's ``CACHE_VERSION``, the real path of the file READ
(under ``--image-source mixed`` that is the synthetic file for pairs drawn as synthetic and
the real one otherwise; one synthetic image serving several dicom_ids is cached once), its
size, its mtime_ns and ``R``: a replaced or touched file gets a new entry (the old entry is
left on disk, never used). Building is resumable (finished shards are kept; a killed run
loses at most the shard it was writing), parallel (``workers`` decoding processes, and under
DDP the ranks split the shards and wait for each other through the files, not a collective)
and refuses to start without the disk space it needs. Disk cost: R * R bytes per image, e.g.
the 213k frontal MIMIC-CXR images at 256 px take about 14 GB.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_write, atomic_write_text, remove_stale_temp_files
from benchmark.errors import ConfigError, ImageDecodeError
from benchmark.images import read_grey
from benchmark.preprocess import resize_and_pad

CACHE_VERSION = 1
SHARD_IMAGES = 1024  # images per shard (64 MiB at 256 px): the unit of resumption
WAIT_POLL_S = 5.0


def decode_resized(path: str | Path, resize: int) -> np.ndarray:
    """The deterministic part of the pretraining transform: (resize, resize) uint8."""
    return resize_and_pad(read_grey(path), resize)


def default_cache_dir() -> Path:
    """``$MEDVLP_CACHE/pretraining-images`` (default ``~/.cache/medvlp-bench/pretraining-images``)."""
    return Path(os.environ.get("MEDVLP_CACHE", Path.home() / ".cache" / "medvlp-bench")) / "pretraining-images"


def resolve_cache_dir(value: str | Path | None) -> Path | None:
    """``--image-cache``: None (off), ``auto`` (:func:`default_cache_dir`) or a folder."""
    if value in (None, ""):
        return None
    return default_cache_dir() if str(value) == "auto" else Path(value)


def source_key(path: str | Path, resize: int) -> str:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    text = f"medvlp-pretraining-image:{CACHE_VERSION}\0{real}\0{st.st_size}\0{st.st_mtime_ns}\0{resize}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_keys(paths: Sequence[str], resize: int) -> list[str]:
    """:func:`source_key` of every path; stat calls overlap on 8 threads (a network file system)."""
    if len(paths) < 256:
        return [source_key(p, resize) for p in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(functools.partial(source_key, resize=resize), paths, chunksize=256))


@dataclass(frozen=True)
class BuildReport:
    images: int  # distinct source files asked for
    cached: int  # already in the cache
    built: int  # decoded by this process
    folder: Path

    def line(self, resize: int) -> str:
        size = self.images * resize * resize / 1e9
        return (
            f"image cache {self.folder}: {self.images} images at {resize} px ({size:.2f} GB), "
            f"{self.cached} already cached, {self.built} decoded now"
        )


class CachedImages:
    """Row ``i`` -> the cached (R, R) uint8 image of the i-th path given to :meth:`ImageCache.prepare`.
    Memory maps are opened lazily in each process (DataLoader workers included) and never pickled."""

    def __init__(self, shard_files: Sequence[str], shard: np.ndarray, offset: np.ndarray, resize: int):
        self.shard_files, self.shard, self.offset, self.resize = list(shard_files), shard, offset, resize
        self._open: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.shard)

    def __getitem__(self, row: int) -> np.ndarray:
        s = int(self.shard[row])
        array = self._open.get(s)
        if array is None:
            array = self._open[s] = np.load(self.shard_files[s], mmap_mode="r")
        return np.array(array[int(self.offset[row])])

    def take(self, rows: Sequence[int]) -> CachedImages:
        rows = np.asarray(rows, dtype=np.int64)
        return CachedImages(self.shard_files, self.shard[rows], self.offset[rows], self.resize)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_open"] = {}
        return state


class _Decode:
    """Map-style dataset for the DataLoader that builds shards."""

    def __init__(self, paths: Sequence[str], resize: int):
        self.paths, self.resize = list(paths), resize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        image = decode_resized(self.paths[i], self.resize)
        if (
            image.shape != (self.resize, self.resize) or image.dtype != np.uint8
        ):  # pragma: no cover - resize_and_pad's contract
            raise ImageDecodeError(
                self.paths[i], f"decoded to {image.shape} {image.dtype}, expected ({self.resize}, {self.resize}) uint8"
            )
        return image


def _stack(images: list[np.ndarray]) -> np.ndarray:
    return np.stack(images)


class ImageCache:
    """The cache folder of one resize under ``root``."""

    def __init__(self, root: str | Path, resize: int):
        if resize < 1:
            raise ConfigError(f"image cache: resize must be >= 1, got {resize}")
        self.root, self.resize = Path(root), resize
        self.folder = self.root / f"resize-{resize}"
        self._index: dict[str, tuple[str, int]] = {}
        self._seen: set[str] = set()

    # ------------------------------------------------------------------ index
    def index(self) -> dict[str, tuple[str, int]]:
        """key -> (shard .npy path, row); reads the shard index files not read before."""
        if not self.folder.is_dir():
            return self._index
        for meta_path in sorted(self.folder.glob("shard-*.json")):
            if meta_path.name in self._seen:
                continue
            try:
                meta = json.loads(meta_path.read_text())
                npy = meta_path.with_suffix(".npy")
                shape = np.load(npy, mmap_mode="r").shape
            except (OSError, ValueError):
                continue  # a shard being replaced or damaged: its images count as missing
            if (
                meta.get("version") != CACHE_VERSION
                or meta.get("resize") != self.resize
                or shape != (len(meta.get("keys", [])), self.resize, self.resize)
            ):
                continue
            self._seen.add(meta_path.name)
            for row, key in enumerate(meta["keys"]):
                self._index.setdefault(key, (str(npy), row))
        return self._index

    # ------------------------------------------------------------------ build
    def prepare(
        self,
        paths: Sequence[str | Path],
        *,
        workers: int = 0,
        progress: bool = True,
        rank: int = 0,
        world: int = 1,
        barrier: Callable[[], None] | None = None,
        log: Callable[[str], None] | None = print,
    ) -> CachedImages:
        """Cache every image of ``paths`` that is not cached yet, then return a reader whose row
        ``i`` is ``paths[i]``. Under DDP every rank calls this with the same paths (and the
        process group's ``barrier``): ranks split the missing shards and wait for the others'."""
        paths = [str(p) for p in paths]
        keys = source_keys(paths, self.resize)
        remove_stale_temp_files(self.folder)
        index = self.index()
        todo: dict[str, str] = {}
        for key, path in zip(keys, paths):
            if key not in index and key not in todo:
                todo[key] = path
        if barrier is not None:
            barrier()  # every rank planned from the same index before anyone writes a shard
        distinct = len(set(keys))
        plan = _shards(list(todo.items()))
        mine = plan[rank::world]
        self._check_space(sum(len(items) for _, items in mine))
        self._build(mine, workers, progress and rank == 0)
        if len(todo) and world > 1:
            self._wait_for([k for _, items in plan for k, _ in items], log if rank == 0 else None)
        if log is not None and rank == 0:
            log(
                BuildReport(distinct, distinct - len(todo), sum(len(items) for _, items in mine), self.folder).line(
                    self.resize
                )
            )
        return self.reader(paths, keys)

    def reader(self, paths: Sequence[str | Path], keys: Sequence[str] | None = None) -> CachedImages:
        keys = list(keys) if keys is not None else source_keys([str(p) for p in paths], self.resize)
        index = self.index()
        missing = [str(p) for p, k in zip(paths, keys) if k not in index]
        if missing:
            raise ConfigError(
                f"image cache {self.folder}: {len(missing)} image(s) are not cached "
                f"(changed since the cache was built?), e.g. {missing[0]}; rerun to cache them"
            )
        files: dict[str, int] = {}
        shard = np.empty(len(keys), dtype=np.int32)
        offset = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            npy, row = index[key]
            shard[i] = files.setdefault(npy, len(files))
            offset[i] = row
        return CachedImages(list(files), shard, offset, self.resize)

    def _check_space(self, n_images: int) -> None:
        if not n_images:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--image-cache {self.root}: cannot create {self.folder} ({e.strerror or e})") from None
        need = n_images * self.resize * self.resize + (1 << 20)
        free = shutil.disk_usage(self.folder).free
        if free < need:
            raise ConfigError(
                f"image cache {self.folder}: {n_images} images at {self.resize} px need {need / 1e9:.2f} GB, "
                f"only {free / 1e9:.2f} GB free; point --image-cache at a larger disk or run without it"
            )

    def _build(self, shards: list[tuple[str, list[tuple[str, str]]]], workers: int, progress: bool) -> None:
        if not shards:
            return
        import torch

        from benchmark.progress import progress_bar

        paths = [p for _, items in shards for _, p in items]
        batches, start = [], 0
        for _, items in shards:  # batches never cross a shard
            for b in range(start, start + len(items), 32):
                batches.append(list(range(b, min(b + 32, start + len(items)))))
            start += len(items)
        loader = torch.utils.data.DataLoader(
            _Decode(paths, self.resize),
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=_stack,
            generator=torch.Generator(),
        )  # leaves torch's global RNG alone
        stream = iter(loader)
        R = self.resize
        # a bar on a terminal; in a batch log a line at most every 30 s (updates come per 32 images)
        with progress_bar(len(paths), f"image cache ({R} px)", "img", enabled=progress, every=30) as bar:
            for name, items in shards:
                atomic_write(
                    self.folder / f"{name}.npy",
                    functools.partial(_fill_shard, n=len(items), resize=R, stream=stream, bar=bar),
                )
                meta = {
                    "version": CACHE_VERSION,
                    "resize": R,
                    "keys": [k for k, _ in items],
                    "sources": [p for _, p in items],
                }
                atomic_write_text(self.folder / f"{name}.json", json.dumps(meta))
        del stream, loader

    def _wait_for(self, keys: list[str], log: Callable[[str], None] | None) -> None:
        said = False
        while True:
            index = self.index()
            left = sum(1 for k in keys if k not in index)
            if not left:
                return
            if log is not None and not said:
                log(f"image cache: waiting for other ranks to cache {left} images")
                said = True
            time.sleep(WAIT_POLL_S)


def _fill_shard(tmp: Path, *, n: int, resize: int, stream, bar) -> None:
    """Write the next ``n`` decoded images of ``stream`` (batches of (k, R, R)) as an .npy file."""
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, resize, resize))
    filled = 0
    while filled < n:
        block = next(stream)
        array[filled : filled + len(block)] = block
        filled += len(block)
        bar.update(len(block))
    array.flush()
    del array


def _shards(items: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Cut (key, path) items into shards named by a hash of their keys (the same plan on every rank)."""
    out = []
    for s in range(0, len(items), SHARD_IMAGES):
        part = items[s : s + SHARD_IMAGES]
        name = "shard-" + hashlib.sha256("\n".join(k for k, _ in part).encode()).hexdigest()[:16]
        out.append((name, part))
    return out
