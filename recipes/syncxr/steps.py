"""What every SynCXR step shares: its folder under ``--work``, shards of global batches, batch
files written atomically (the unit of resumption), the step manifest and the settings check.

Work is cut into GLOBAL batches in item order (``batch = item // batch_size``); shard ``i`` of
``n`` takes batches ``i, i + n, ...`` (``--shard I/N`` composed with torchrun / Slurm ranks, as in
the synthesis recipe). A batch's results are one JSON file, ``<step>/batches/<batch>.json``,
written atomically with the sha256 of the step's settings: a rerun skips the batches whose file
carries the current settings and refuses files with other settings unless ``--overwrite``. Since
a batch's content and seeds depend only on its index, any sharding and any number of kills and
resumptions give the same files. When every batch is present, the finishing shard (or
``python -m recipes.syncxr merge``) joins them in item order into the step's table and writes
its ``manifest.json``; each shard also leaves ``manifest.<i>-of-<n>.json`` with its own timing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from benchmark.atomic import atomic_write_text, remove_stale_temp_files
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.provenance import git_state, package_versions
from recipes.synthesis.generate import effective_shard, model_fingerprint

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_record(folder: str | Path) -> dict:
    """How a step records a local model folder: its name, path and content hash (sha256 over the
    configs and tokenizer files in full and the weight files' names, sizes, first and last MiB;
    ``recipes.synthesis.generate.model_fingerprint``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"model folder {folder} does not exist (pass a local model folder; nothing is downloaded)")
    return {
        "name": folder.resolve().name,
        "path": str(folder.resolve()),
        "content_sha256_16": model_fingerprint(folder),
    }


def provenance() -> dict:
    return {"packages": package_versions(), "git": git_state(), "command": " ".join(sys.argv)}


def my_shard(shard: str | None) -> tuple[int, int]:
    """``--shard I/N`` composed with launcher ranks (``recipes.synthesis.generate.effective_shard``)."""
    return effective_shard(shard)


def batch_count(items: int, batch_size: int) -> int:
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    return (items + batch_size - 1) // batch_size


def shard_batches(n_batches: int, index: int, count: int) -> list[int]:
    """The global batches of shard ``index`` of ``count``: ``index, index + count, ...``."""
    return list(range(index, n_batches, count))


class ShardWork(NamedTuple):
    """This process's share of a batched step: the step's batch count, the shard, and that
    shard's batches already done (same settings) and still to do."""

    n_batches: int
    index: int
    count: int
    done: list[int]
    todo: list[int]


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class BatchStore:
    """The batch files of one step (see the module docstring)."""

    def __init__(self, folder: Path, settings: dict, step: str):
        self.folder = Path(folder)
        self.dir = self.folder / "batches"
        self.settings = settings
        self.key = settings_hash(settings)
        self.step = step
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.dir)

    def path(self, batch: int) -> Path:
        return self.dir / f"{batch:06d}.json"

    def read(self, batch: int) -> dict | None:
        try:
            return json.loads(self.path(batch).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or unreadable: (re)do it

    def plan(self, batches: list[int], overwrite: bool) -> tuple[list[int], list[int]]:
        """(done, todo) among ``batches``; a batch file with other settings is refused unless
        ``overwrite``."""
        done, todo, stale = [], [], []
        for batch in batches:
            content = self.read(batch)
            if content is None:
                todo.append(batch)
            elif content.get("settings_sha256") == self.key:
                done.append(batch)
            else:
                stale.append(batch)
        if stale and not overwrite:
            raise ConfigError(
                f"{self.dir} holds {len(stale)} {self.step} batch file(s) made with other settings (e.g. "
                f"{self.path(stale[0]).name}; see {self.folder / 'settings.json'} for the current ones). Use another "
                "--work folder, or --overwrite to redo them."
            )
        return done, sorted(todo + stale)

    def write(self, batch: int, records: list[dict]) -> None:
        body = {"settings_sha256": self.key, "batch": batch, "records": records}
        atomic_write_text(self.path(batch), json.dumps(body, ensure_ascii=False, default=str) + "\n")

    def complete(self, n_batches: int) -> bool:
        return all((c := self.read(b)) is not None and c.get("settings_sha256") == self.key for b in range(n_batches))

    def records(self, n_batches: int) -> list[dict]:
        """Every record, in batch order; raises when a batch is missing or stale."""
        out = []
        for batch in range(n_batches):
            content = self.read(batch)
            if content is None or content.get("settings_sha256") != self.key:
                raise BenchmarkError(
                    f"{self.path(batch)}: batch {batch} of the {self.step} step is missing or was made with other "
                    "settings; run the step (all shards) to completion first"
                )
            out.extend(content["records"])
        return out

    def write_settings(self) -> None:
        atomic_write_text(self.folder / "settings.json", json.dumps(self.settings, indent=2, default=str) + "\n")


def write_manifest(folder: Path, manifest: dict, name: str = MANIFEST) -> Path:
    path = Path(folder) / name
    atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, **manifest}, indent=2, default=str) + "\n")
    return path


def read_manifest(folder: Path, step: str, hint: str) -> dict:
    """A finished step's ``manifest.json``; a clear error naming the command to run otherwise."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BenchmarkError(f"{path}: the {step} step has not finished (no manifest). Run {hint} first.")
    return json.loads(path.read_text(encoding="utf-8"))


def check_settings(folder: Path, settings: dict, step: str, overwrite: bool) -> None:
    """Refuse a single-file step whose folder holds results made with other settings."""
    path = Path(folder) / MANIFEST
    if not path.is_file() or overwrite:
        return
    previous = json.loads(path.read_text(encoding="utf-8")).get("settings")
    if previous is not None and settings_hash(previous) != settings_hash(settings):
        changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
        raise ConfigError(
            f"{folder} holds a {step} step made with other settings ({', '.join(changed[:6])} differ). Use another "
            "--work folder, or --overwrite to redo it."
        )


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "item", every: float = 0.0):
    """A bar with ETA on a terminal, one line per update (at most one per ``every`` s) in a batch log."""
    from benchmark.progress import progress_bar as bar

    return bar(total, desc, unit, enabled=enabled, every=every)


class Timer:
    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def log(message: str) -> None:
    print(f"[syncxr] {message}", flush=True)


def start_batched_step(
    folder: Path, settings: dict, step: str, n_items: int, batch_size: int, shard: str | None, overwrite: bool
) -> tuple[BatchStore, ShardWork]:
    """The start every batched step shares: open its batch store, plan this shard's batches
    (batch files made with other settings are refused unless ``overwrite``) and record the settings."""
    store = BatchStore(folder, settings, step)
    n_batches = batch_count(n_items, batch_size)
    index, count = my_shard(shard)
    done, todo = store.plan(shard_batches(n_batches, index, count), overwrite)
    store.write_settings()
    return store, ShardWork(n_batches, index, count, done, todo)
