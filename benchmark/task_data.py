"""A task's data on this machine: dataset records joined with its split manifest.

Manifests come from ``tasks/manifests/`` (committed, for the paper suite) or are built
deterministically from the local label files and kept in the cache (datasets whose labels
cannot be shipped, and the demo suite). Either way the manifest hash and the hash of every
id list a unit trains or tests on go into the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from .datasets import get_dataset
from .datasets.base import DatasetAdapter
from .errors import BenchmarkError
from .splits import Manifest, build_manifest, draw_training_sets, ids_hash, read_manifest, write_manifest
from .suites import DEFAULT_CACHE, REPO_MANIFESTS, Suite
from .task_spec import TaskSpec


@dataclass
class TaskData:
    task: TaskSpec
    suite: Suite
    adapter: DatasetAdapter
    manifest: Manifest

    @cached_property
    def records(self) -> pd.DataFrame:
        return self.adapter.records.set_index("image_id", drop=False)

    @cached_property
    def split_ids(self) -> dict[str, list[str]]:
        ids = {split: self.manifest.ids(split) for split in ("train", "val", "test")}
        if not ids["test"]:  # the manifest leaves the official test partition implicit
            ids["test"] = sorted(self.records.index[self.records["source_split"] == "test"])
        left_out = set(self.adapter.bad_rows.image_ids()) if self.adapter.skip_bad_rows else set()
        if left_out:  # --skip-bad-rows: images of bad label rows leave every split (recorded in the results)
            ids = {split: [i for i in v if i not in left_out] for split, v in ids.items()}
        missing = {s: [i for i in v if i not in self.records.index] for s, v in ids.items()}
        if any(missing.values()):
            examples = [i for v in missing.values() for i in v][:5]
            counts = {s: len(v) for s, v in missing.items() if v}
            raise BenchmarkError(
                f"{self.adapter.title} at {self.adapter.folder} lacks images that the split manifest "
                f"{self.manifest.path} lists ({counts} missing, e.g. {examples}). Is the dataset "
                "complete and in its official layout?"
            )
        if not ids["test"]:
            raise BenchmarkError(f"{self.adapter.title}: the test split is empty (no official test partition found)")
        return ids

    @property
    def split_recipe(self):
        return self.suite.split_recipes[self.task.dataset]

    @property
    def balance_column(self) -> str | None:
        """The 0/1 label column whose positives and as many negatives form the training set,
        or None (natural mix)."""
        if self.split_recipe.balance is None and self.manifest.balanced:
            raise BenchmarkError(
                f"{self.task.dataset}: the split manifest {self.manifest.path} lists balanced training sets "
                "but the suite's split recipe has no 'balance' column; the recipe and manifest disagree"
            )
        return self.split_recipe.balance

    @cached_property
    def content_sha256(self) -> str:
        """Digest of the image files behind every split id (size and first/last 64 KiB of
        each, not the mtime: :func:`benchmark.features.content_digest` ``portable``): part of
        every unit key, so a finished result is never reused once the images behind its ids
        changed, and stays reusable on another machine holding the same image bytes (the
        committed demo results on a fresh clone)."""
        from .features import content_digest

        ids = [i for split in ("train", "val", "test") for i in self.split_ids[split]]
        return content_digest(self.records.loc[ids, "path"].astype(str).tolist(), portable=True)

    def train_ids(self, fraction: int, seed: int) -> list[str]:
        """Image ids a unit trains on: the train split (or, for a recipe with ``balance``,
        its balanced set: all positives plus as many negatives), or a nested 1% / 10% subset
        of it. The single place units get their training ids."""
        recipe = self.split_recipe
        if fraction != 100 and fraction not in recipe.subset_percents:
            raise BenchmarkError(
                f"label fraction {fraction}% is not defined; "
                f"use one of 100, {', '.join(map(str, recipe.subset_percents))}"
            )
        train = self.split_ids["train"]
        balance = self.balance_column
        if fraction == 100 and balance is None:
            return train
        column = self.manifest.training_column(fraction, seed)
        if column is not None:
            frame = self.manifest.frame
            chosen = frame.loc[(frame["split"] == "train") & (frame[column] == 1), "image_id"].tolist()
            kept = set(train)  # without images that --skip-bad-rows left out
            return [i for i in chosen if i in kept] if len(kept) != int((frame["split"] == "train").sum()) else chosen
        # seeds beyond the manifest's draw extra training sets with the same deterministic rule
        rows = self.records.loc[train].reset_index(drop=True)
        chosen = draw_training_sets(rows, recipe, self.task.dataset, seed)[fraction]
        return rows.loc[chosen, "image_id"].tolist()

    def describe(self, fraction: int, seed: int) -> dict:
        train = self.train_ids(fraction, seed)
        balance = self.balance_column
        composition: dict = {"train_composition": "natural"}
        if balance is not None:
            labels = self.records.loc[train, balance]
            composition = {
                "train_composition": f"balanced (all positives + equal negatives, MGCA; label column {balance!r})",
                "n_train_positive": int((labels == 1).sum()),
                "n_train_negative": int((labels == 0).sum()),
            }
        release = self.adapter.release()  # which official release (CheXpert: full or small)
        return {
            "dataset_version": self.adapter.version(),
            "dataset_folder": str(self.adapter.folder),
            **({"release": release} if release is not None else {}),
            "manifest": str(self.manifest.path),
            "manifest_sha256": self.manifest.sha256,
            "n_train": len(train),
            **composition,
            "n_val": len(self.split_ids["val"]),
            "n_test": len(self.split_ids["test"]),
            "train_ids_sha256": ids_hash(train),
            "val_ids_sha256": ids_hash(self.split_ids["val"]),
            "test_ids_sha256": ids_hash(self.split_ids["test"]),
        }


def limited(ids: list[str], limit: int | None) -> list[str]:
    """The first ``limit`` ids (``--limit``, a debugging aid), or all of them."""
    return ids if limit is None else ids[:limit]


def unit_train_ids(data: TaskData, fraction: int, seed: int, limit: int | None = None) -> list[str]:
    """A unit's training images; under ``--limit`` only those among the first N of the split."""
    ids = data.train_ids(fraction, seed)
    if limit is None:
        return ids
    allowed = set(limited(data.split_ids["train"], limit))
    return [i for i in ids if i in allowed] or limited(data.split_ids["train"], limit)


def local_manifest(adapter: DatasetAdapter, suite: Suite, dataset: str, cache: Path) -> Manifest:
    recipe = suite.split_recipes[dataset]
    label_digest = hashlib.sha256()
    for path in adapter.label_files():
        label_digest.update(path.read_bytes())
    key = hashlib.sha256(f"{label_digest.hexdigest()}|{recipe.to_dict()}".encode()).hexdigest()[:16]
    path = cache / "manifests" / suite.name / f"{dataset}-{key}.csv.gz"
    if not path.is_file():
        manifest = build_manifest(adapter.records, recipe, dataset)
        write_manifest(
            manifest,
            path,
            {"dataset": dataset, "recipe": recipe.to_dict(), "source": adapter.version(), "suite": suite.name},
        )
    return read_manifest(path, dataset)


def load_task_data(task: TaskSpec, suite: Suite, cache: Path = DEFAULT_CACHE) -> TaskData:
    adapter = get_dataset(task.dataset).locate(suite.data_roots)
    committed = REPO_MANIFESTS / f"{task.dataset}.csv.gz"
    if suite.use_committed_manifests and committed.is_file():
        manifest = read_manifest(committed, task.dataset)
    else:
        manifest = local_manifest(adapter, suite, task.dataset, cache)
    return TaskData(task, suite, adapter, manifest)
