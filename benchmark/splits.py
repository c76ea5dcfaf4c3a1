"""Split manifests: pinned, hashed, nested, stratified.

A manifest lists, for one dataset, every image id with its split (train / val / test) and
its membership of the label-fraction subsets: ``sub10_s<seed>`` (10%) and ``sub1_s<seed>``
(1%) for each manifest seed. 1% lies inside 10%, which lies inside the train split.

Selection is deterministic and library-independent: inside each stratum (a combination of
label values) images are ranked by ``sha256(salt, image_id)`` and the first ones are
taken; stratum quotas use the largest-remainder method so totals are exact. The same label
file therefore always gives the same manifest, on any machine and numpy version. Subsets for
seeds beyond the committed ones are drawn the same way on the fly.

The manifest is stored as gzip-compressed CSV (gzip mtime 0) beside a JSON sidecar with
the recipe and counts; its hash is the sha256 of the UNCOMPRESSED CSV bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BenchmarkError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitRecipe:
    """How a dataset is split (part of each task spec; the demo suite scales the counts).

    ``val`` / ``test``: a count of images drawn from the official train partition, or a
    share of it when below 1. ``test=None`` means the official test partition is the test set.
    """

    val: int | float
    test: int | float | None = None
    stratify: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    subset_percents: tuple[int, ...] = (10, 1)  # nested, largest first
    min_positives: int = 1  # every class keeps at least this many positives in each subset

    def to_dict(self) -> dict:
        return asdict(self)


def rank_key(salt: str, image_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\x00{image_id}".encode()).digest()[:8], "big")


def _count(amount: int | float, total: int) -> int:
    return int(round(amount * total)) if isinstance(amount, float) and amount < 1 else int(amount)


def _strata(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    if not columns:
        return pd.Series("all", index=frame.index)
    return frame[list(columns)].astype(str).agg("|".join, axis=1)


def stratified_pick(frame: pd.DataFrame, n: int, stratify: tuple[str, ...], salt: str) -> pd.Index:
    """Pick exactly ``n`` rows, proportionally per stratum, by hash rank inside each stratum."""
    if n > len(frame):
        raise BenchmarkError(f"cannot draw {n} images from {len(frame)}")
    strata = _strata(frame, stratify)
    sizes = strata.value_counts().sort_index()
    exact = sizes * n / len(frame)
    quota = np.floor(exact).astype(int)
    remainder = (exact - quota).sort_values(ascending=False, kind="stable")
    for key in remainder.index[: n - int(quota.sum())]:
        quota[key] += 1
    ranks = pd.Series([rank_key(salt, i) for i in frame["image_id"]], index=frame.index)
    picked: list = []
    for key, k in quota.items():
        if k:
            members = ranks[strata == key].sort_values(kind="stable")
            picked.extend(members.index[:k])
    return pd.Index(sorted(picked))


def ensure_positives(
    parent: pd.DataFrame, chosen: pd.Index, classes: list[str], minimum: int, salt: str
) -> pd.Index:
    """Swap images into ``chosen`` until every class column has ``minimum`` positives.

    ``classes`` are 0/1 indicator columns of ``parent``. A class with fewer positives in the
    parent keeps all it has. The image swapped out is the lowest-ranked one whose removal
    leaves every other class at or above its minimum.
    """
    chosen = list(chosen)
    rank = {i: rank_key(salt + ":swap", parent.at[i, "image_id"]) for i in parent.index}
    target = {c: min(minimum, int(parent[c].sum())) for c in classes}
    count = {c: int(parent.loc[chosen, c].sum()) for c in classes}
    for cls in classes:
        incoming = sorted(set(parent.index[parent[cls] > 0]) - set(chosen), key=rank.get)
        while count[cls] < target[cls] and incoming:
            new = incoming.pop(0)
            for old in sorted(chosen, key=rank.get, reverse=True):
                if parent.at[old, cls] > 0:
                    continue
                if all(count[c] - 1 >= target[c] for c in classes if c != cls and parent.at[old, c] > 0):
                    chosen.remove(old)
                    for c in classes:
                        count[c] -= int(parent.at[old, c])
                    break
            chosen.append(new)
            for c in classes:
                count[c] += int(parent.at[new, c])
    return pd.Index(sorted(chosen))


def class_indicators(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """0/1 columns, one per class that must be represented: the positive value of a binary
    label column, every value of a multi-class one."""
    out = {}
    for column in columns:
        values = sorted(frame[column].unique())
        wanted = [1] if set(values) <= {0, 1} else values
        for value in wanted:
            out[f"cls:{column}={value}"] = (frame[column] == value).astype(int)
    return pd.DataFrame(out, index=frame.index)


def draw_subsets(train: pd.DataFrame, recipe: SplitRecipe, dataset: str, seed: int) -> dict[int, pd.Index]:
    """Nested label-fraction subsets of the train split for one seed: {percent: row index}."""
    indicators = class_indicators(train, recipe.stratify)
    work = pd.concat([train[["image_id", *recipe.stratify]], indicators], axis=1)
    subsets: dict[int, pd.Index] = {}
    parent = work
    for percent in recipe.subset_percents:
        n = int(round(len(train) * percent / 100))
        salt = f"{dataset}:sub{percent}:s{seed}"
        chosen = stratified_pick(parent, n, recipe.stratify, salt)
        chosen = ensure_positives(parent, chosen, list(indicators.columns), recipe.min_positives, salt)
        subsets[percent] = chosen
        parent = parent.loc[chosen]
    return subsets


def build_manifest(records: pd.DataFrame, recipe: SplitRecipe, dataset: str) -> pd.DataFrame:
    """Deterministic manifest from a dataset's records (``image_id``, ``source_split``, labels)."""
    records = records.sort_values("image_id", kind="stable").reset_index(drop=True)
    if records["image_id"].duplicated().any():
        dupes = records.loc[records["image_id"].duplicated(), "image_id"].head(5).tolist()
        raise BenchmarkError(f"{dataset}: duplicate image ids in the records, e.g. {dupes}")
    pool = records[records["source_split"] == "train"]
    split = pd.Series("train", index=pool.index)
    if recipe.test is None:
        test_rows = records[records["source_split"] == "test"]
    else:
        test_rows = pool.loc[stratified_pick(pool, _count(recipe.test, len(pool)), recipe.stratify, f"{dataset}:test")]
        pool = pool.drop(test_rows.index)
    val_index = stratified_pick(pool, _count(recipe.val, len(pool) + 0), recipe.stratify, f"{dataset}:val")
    split = pd.Series("train", index=pool.index)
    split.loc[val_index] = "val"
    manifest = pd.DataFrame({"image_id": pool["image_id"], "split": split})
    if len(test_rows):
        manifest = pd.concat([manifest, pd.DataFrame({"image_id": test_rows["image_id"], "split": "test"})])
    train = pool.loc[split.index[split == "train"]]
    for seed in recipe.seeds:
        for percent, chosen in draw_subsets(train, recipe, dataset, seed).items():
            column = f"sub{percent}_s{seed}"
            manifest[column] = 0
            manifest.loc[chosen, column] = 1
    order = manifest["split"].map({s: i for i, s in enumerate(SPLITS)})
    manifest = manifest.assign(_order=order).sort_values(["_order", "image_id"], kind="stable").drop(columns="_order")
    return manifest.reset_index(drop=True)


# ---------------------------------------------------------------------------- storage
def manifest_bytes(manifest: pd.DataFrame) -> bytes:
    return manifest.to_csv(index=False, lineterminator="\n").encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(manifest: pd.DataFrame, path: Path, meta: dict) -> str:
    """Write ``<name>.csv.gz`` (deterministic gzip) and ``<name>.json``; return the hash."""
    data = manifest_bytes(manifest)
    digest = sha256_bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as handle:
        handle.write(data)
    _atomic_write(path, buffer.getvalue())
    counts = manifest["split"].value_counts().reindex(SPLITS, fill_value=0).to_dict()
    subsets = {c: int(manifest[c].sum()) for c in manifest.columns if c.startswith("sub")}
    sidecar = {**meta, "sha256": digest, "counts": counts, "subset_sizes": subsets}
    _atomic_write(sidecar_path(path), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return digest


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".csv.gz") + ".json")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass
class Manifest:
    dataset: str
    frame: pd.DataFrame
    sha256: str
    path: Path | None = None
    meta: dict = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted({int(c.split("_s")[1]) for c in self.frame.columns if c.startswith("sub")})

    def ids(self, split: str) -> list[str]:
        return self.frame.loc[self.frame["split"] == split, "image_id"].tolist()

    def has_test(self) -> bool:
        return bool((self.frame["split"] == "test").any())


def read_manifest(path: Path, dataset: str) -> Manifest:
    data = gzip.decompress(path.read_bytes())
    frame = pd.read_csv(io.BytesIO(data), dtype={"image_id": str, "split": str})
    meta = json.loads(sidecar_path(path).read_text()) if sidecar_path(path).is_file() else {}
    digest = sha256_bytes(data)
    if meta.get("sha256") and meta["sha256"] != digest:
        raise BenchmarkError(f"Manifest {path} does not match the hash in its sidecar ({meta['sha256'][:12]}): it was edited by hand. Rebuild it with tasks/build_manifests.py.")
    return Manifest(dataset, frame, digest, path, meta)


def ids_hash(ids) -> str:
    return sha256_bytes("\n".join(sorted(ids)).encode())
