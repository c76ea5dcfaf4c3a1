"""Split manifests: pinned, hashed, nested, stratified.

A manifest lists, for one dataset, every image id with its split (train / val / test) and
its membership of the label-fraction subsets: ``sub10_s<seed>`` (10%) and ``sub1_s<seed>``
(1%) for each manifest seed. 1% lies inside 10%, which lies inside the training set of that
seed: the whole train split, or, for a recipe with ``balance`` (SIIM, as in MGCA and
GLoRIA), the balanced set ``bal_s<seed>`` (every positive train image plus as many
negatives), whose 10% and 1% are then 10% and 1% of the balanced set. Validation and test
keep the natural mix.

With ``val_groups`` the validation split is drawn as whole groups (patients, the records'
``group`` column), so no patient has images in both train and val (CheXpert).

Selection is deterministic and library-independent: inside each stratum (a combination of
label values) images are ranked by ``sha256(salt, image_id)`` and the first ones are
taken; stratum quotas use the largest-remainder method so totals are exact. The same label
file therefore always gives the same manifest, on any machine and numpy version. Balanced sets
rank the negatives the same way, and a validation split drawn by group ranks the groups.
Training sets for seeds beyond the committed ones are drawn the same way on the fly.

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
    ``balance``: a 0/1 label column; each seed then trains on all positive train images plus
    as many negatives (``bal_s<seed>``), and the subsets are fractions of that set.
    ``val_groups``: val is drawn as whole groups (the records' ``group`` column, the patient)
    rather than stratified images; a test set drawn from the pool stays image-level.
    """

    val: int | float
    test: int | float | None = None
    stratify: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    subset_percents: tuple[int, ...] = (10, 1)  # nested, largest first
    min_positives: int = 1  # every class keeps at least this many positives in each subset
    # 0/1 label column: train on all its positives plus as many negatives (fractions of that set)
    balance: str | None = None
    # draw val as whole groups (the records' ``group`` column: the patient) instead of images
    val_groups: bool = False

    def to_dict(self) -> dict:
        """The recipe as recorded in sidecars and cache keys. Options left at their default
        are omitted, so recipes that do not use them keep their earlier records and keys."""
        out = asdict(self)
        for name in OPTIONAL_FIELDS:
            if out[name] == getattr(SplitRecipe, name):
                del out[name]
        return out


OPTIONAL_FIELDS = ("balance", "val_groups")


def rank_key(salt: str, image_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\x00{image_id}".encode()).digest()[:8], "big")


def _count(amount: int | float, total: int) -> int:
    return int(round(amount * total)) if isinstance(amount, float) and amount < 1 else int(amount)


def _strata(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    if not columns:
        return pd.Series("all", index=frame.index)
    # column by column (the same strings as a row-wise "|".join, far faster on 200k rows)
    key = frame[columns[0]].astype(str)
    for column in columns[1:]:
        key = key + "|" + frame[column].astype(str)
    return key


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


def ensure_positives(parent: pd.DataFrame, chosen: pd.Index, classes: list[str], minimum: int, salt: str) -> pd.Index:
    """Swap images into ``chosen`` until every class column has ``minimum`` positives.

    ``classes`` are 0/1 indicator columns of ``parent``. A class with fewer positives in the
    parent keeps all it has. The image swapped out is the lowest-ranked one whose removal
    leaves every other class at or above its minimum.
    """
    chosen = list(chosen)
    rank = {i: rank_key(salt + ":swap", image_id) for i, image_id in zip(parent.index, parent["image_id"])}
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


def balanced_set(train: pd.DataFrame, column: str, dataset: str, seed: int) -> pd.Index:
    """Every positive row of ``train`` (``column`` == 1) plus as many negatives, the
    negatives taken in hash-rank order (salt ``<dataset>:bal:s<seed>``). With fewer
    negatives than positives, all rows are kept."""
    values = train[column]
    if not set(values.unique()) <= {0, 1}:
        raise BenchmarkError(f"{dataset}: balance column {column!r} must hold 0/1 labels")
    positives = train.index[values == 1]
    negatives = train.index[values == 0]
    salt = f"{dataset}:bal:s{seed}"
    ranks = pd.Series([rank_key(salt, i) for i in train.loc[negatives, "image_id"]], index=negatives)
    chosen = ranks.sort_values(kind="stable").index[: len(positives)]
    return pd.Index(sorted([*positives, *chosen]))


def draw_training_sets(train: pd.DataFrame, recipe: SplitRecipe, dataset: str, seed: int) -> dict[int, pd.Index]:
    """One seed's training sets, {percent: row index of ``train``} for 100 and every subset
    percent: the whole train split, or the balanced set when the recipe has ``balance``;
    the nested subsets are drawn inside it (1% inside 10% inside 100%)."""
    if recipe.balance is None:
        full = train.index
    else:
        full = balanced_set(train, recipe.balance, dataset, seed)
    return {100: full, **draw_subsets(train.loc[full], recipe, dataset, seed)}


def group_pick(frame: pd.DataFrame, n: int, salt: str) -> pd.Index:
    """Rows of whole groups (``group`` column) totalling ``n`` images where possible.

    Groups are ranked by ``sha256(salt, group)`` and taken greedily in rank order while they
    fit; a group whose images would overshoot ``n`` is skipped and the next one tried. The
    result has exactly ``n`` rows whenever the remaining groups can fill the gap (any
    single-image group can), otherwise fewer (the greedy total, at most ``n``). Label
    stratification does not apply: the label mix is whatever the groups bring.
    """
    if n > len(frame):
        raise BenchmarkError(f"cannot draw {n} images from {len(frame)}")
    if "group" not in frame.columns:
        raise BenchmarkError("drawing whole groups needs a 'group' column in the records")
    sizes = frame.groupby("group", sort=True).size()
    ranks = pd.Series([rank_key(salt, str(g)) for g in sizes.index], index=sizes.index)
    taken: list = []
    total = 0
    for group in ranks.sort_values(kind="stable").index:
        if total == n:
            break
        if total + sizes[group] <= n:
            taken.append(group)
            total += int(sizes[group])
    return pd.Index(sorted(frame.index[frame["group"].isin(taken)]))


def draw_val(pool: pd.DataFrame, recipe: SplitRecipe, dataset: str) -> pd.Index:
    """The validation rows of ``pool`` (the official train partition less a drawn test set)."""
    n = _count(recipe.val, len(pool))
    if recipe.val_groups:
        return group_pick(pool, n, f"{dataset}:val")
    return stratified_pick(pool, n, recipe.stratify, f"{dataset}:val")


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
    val_index = draw_val(pool, recipe, dataset)
    split = pd.Series("train", index=pool.index)
    split.loc[val_index] = "val"
    manifest = pd.DataFrame({"image_id": pool["image_id"], "split": split})
    if len(test_rows):
        manifest = pd.concat([manifest, pd.DataFrame({"image_id": test_rows["image_id"], "split": "test"})])
    train = pool.loc[split.index[split == "train"]]
    for seed in recipe.seeds:
        for percent, chosen in draw_training_sets(train, recipe, dataset, seed).items():
            if percent == 100:
                if recipe.balance is None:
                    continue  # the whole train split: no column
                column = f"bal_s{seed}"
            else:
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
    subsets = {c: int(manifest[c].sum()) for c in manifest.columns if c.startswith(("sub", "bal_"))}
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

    def training_column(self, fraction: int, seed: int) -> str | None:
        """The manifest column listing a unit's training images, or None when the manifest
        does not list them (the whole train split at 100%, or a seed beyond the manifest's)."""
        column = f"bal_s{seed}" if fraction == 100 else f"sub{fraction}_s{seed}"
        return column if column in self.frame.columns else None

    @property
    def balanced(self) -> bool:
        return any(c.startswith("bal_s") for c in self.frame.columns)

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
        raise BenchmarkError(
            f"Manifest {path} does not match the hash in its sidecar ({meta['sha256'][:12]}): "
            "it was edited by hand. Rebuild it with tasks/build_manifests.py."
        )
    return Manifest(dataset, frame, digest, path, meta)


def ids_hash(ids) -> str:
    return sha256_bytes("\n".join(sorted(ids)).encode())
