"""The ground truth a predictions file must hold, as the harness derives it from the labels.

A predictions file carries the targets each test image was scored against, so a file whose
targets were rewritten would score whatever its author liked. For every test set whose labels
the project can see, it commits the targets the harness itself derives
(``benchmark/data/reference_targets/<suite>/<dataset>.csv.gz``: the label columns of every
task on the dataset, one row per test image; ``<dataset>.boxes.csv.gz``: the boxes), and
:mod:`benchmark.result_checks` compares every predictions file with them:

- paper suite: ``rsna_cls``, ``rsna_seg``, ``rsna_det`` and ``siim_seg``, derived from the
  official label files that torchxrayvision ships, on the committed manifests' test ids
  (written and checked bit for bit by ``tasks/build_manifests.py [--check]``);
- demo suite: the seven supervised tasks, derived from the deterministic demo generator's
  files on the demo manifests' test ids (``scripts/build_reference_targets.py``; a test
  regenerates the suite and compares).

Paper CheXpert (its test set is the official ``valid.csv``, not redistributable), COVIDx
and Object-CXR (label files not redistributable) have no committed reference: their targets
are only checked for consistency across seeds, fractions and submissions (the leaderboard's
target digest).

The canonical table: one row per test image with ``image_id`` and the ``target:<column>``
values of the predictions file (classification, zero-shot classification, segmentation), or
one row per ground-truth box ``image_id, x1, y1, x2, y2`` in original pixels, and one row
with empty coordinates for an image without a box (detection).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "reference_targets"
BOX_COLUMNS = ("x1", "y1", "x2", "y2")
BOX_TOLERANCE = 1e-3  # pixels: CSV round-trips of float coordinates


def has_targets(task) -> bool:
    """Tasks whose predictions carry per-image targets that labels determine."""
    return (
        task.family in ("classification", "segmentation", "detection")
        or getattr(task, "mode", None) == "classification"
    )


def _target_columns(task) -> list[str]:
    if task.family == "segmentation":
        return [task.label_column]
    return list(task.label_columns)


def derived_targets(task, records: pd.DataFrame, test_ids: list[str]) -> pd.DataFrame:
    """The canonical targets of ``test_ids`` from the harness's records (indexed by image id;
    the columns the dataset adapter reads from the label file)."""
    rows = records.loc[list(test_ids)]
    if task.family == "detection":
        out = []
        for image_id, boxes in zip(test_ids, rows[task.box_column]):
            boxes = list(boxes) if boxes is not None else []
            if not boxes:
                out.append((image_id, np.nan, np.nan, np.nan, np.nan))
            for x, y, w, h in boxes:
                out.append((image_id, float(x), float(y), float(x) + float(w), float(y) + float(h)))
        return canonical(task, pd.DataFrame(out, columns=["image_id", *BOX_COLUMNS]))
    table = pd.DataFrame({"image_id": list(test_ids)})
    for column in _target_columns(task):
        table[f"target:{column}"] = rows[column].to_numpy()
    return canonical(task, table)


def predictions_targets(task, predictions: pd.DataFrame) -> pd.DataFrame:
    """The canonical targets a predictions table holds."""
    if task.family == "detection":
        images = predictions.loc[predictions["kind"] == "image", ["image_id"]]
        gt = predictions.loc[predictions["kind"] == "gt", ["image_id", *BOX_COLUMNS]]
        empty = images[~images["image_id"].isin(set(gt["image_id"]))].assign(**{c: np.nan for c in BOX_COLUMNS})
        return canonical(task, pd.concat([gt, empty], ignore_index=True))
    columns = [f"target:{c}" for c in _target_columns(task)]
    missing = [c for c in columns if c not in predictions.columns]
    if missing:
        raise KeyError(", ".join(missing))
    return canonical(task, predictions[["image_id", *columns]])


def canonical(task, table: pd.DataFrame) -> pd.DataFrame:
    table = table.assign(image_id=table["image_id"].astype(str))
    keys = ["image_id", *BOX_COLUMNS] if task.family == "detection" else ["image_id"]
    for column in table.columns[1:]:
        table[column] = pd.to_numeric(table[column]).astype(np.float64)
    return table.sort_values(keys, kind="stable", na_position="first").reset_index(drop=True)


def differences(task, found: pd.DataFrame, expected: pd.DataFrame) -> list[str]:
    """Image ids whose targets differ (sorted); [] when the tables agree."""

    def per_image(table):
        values = table.drop(columns="image_id").to_numpy(dtype=np.float64)
        groups: dict[str, list] = {}
        for image_id, row in zip(table["image_id"], values):
            groups.setdefault(image_id, []).append(row)
        return {k: np.array(v) for k, v in groups.items()}

    a, b = per_image(found), per_image(expected)
    bad = []
    for image_id in sorted(set(a) | set(b)):
        x, y = a.get(image_id), b.get(image_id)
        same = (
            x is not None
            and y is not None
            and x.shape == y.shape
            and bool(np.all(np.isclose(x, y, rtol=0, atol=BOX_TOLERANCE, equal_nan=True)))
        )
        if not same:
            bad.append(image_id)
    return bad


def describe(task, table: pd.DataFrame, image_id: str) -> str:
    rows = table[table["image_id"] == image_id].drop(columns="image_id")
    if task.family == "detection":
        boxes = [tuple(round(float(v), 1) for v in r) for r in rows.to_numpy() if not np.isnan(r).all()]
        return f"{len(boxes)} box(es) {boxes[:3]}" if boxes else "no box"
    return ", ".join(f"{c[len('target:') :]}={v:g}" for c, v in rows.iloc[0].items()) if len(rows) else "absent"


def reference_path(suite: str, task, root: Path = REFERENCE_DIR) -> Path:
    name = f"{task.dataset}.boxes" if task.family == "detection" else task.dataset
    return Path(root) / suite / f"{name}.csv.gz"


def dataset_references(tasks, records: pd.DataFrame, test_ids: list[str]) -> dict[str, pd.DataFrame]:
    """{file stem: canonical table} for the tasks of one dataset: the label columns of all its
    label tasks in one table (tasks sharing a column must agree), the boxes in another."""
    labels: pd.DataFrame | None = None
    out: dict[str, pd.DataFrame] = {}
    for task in tasks:
        if not has_targets(task):
            continue
        table = derived_targets(task, records, test_ids)
        if task.family == "detection":
            out[f"{task.dataset}.boxes"] = table
            continue
        if labels is None:
            labels = out[task.dataset] = table
            continue
        for column in table.columns[1:]:
            if column in labels.columns:
                if not np.array_equal(labels[column].to_numpy(), table[column].to_numpy(), equal_nan=True):
                    raise ValueError(f"{task.id}: its {column} differs from another task's on the same images")
            else:
                labels[column] = table[column].to_numpy()
    return out


def reference_bytes(table: pd.DataFrame) -> bytes:
    """Bit-for-bit reproducible bytes of a canonical table (gzip without a timestamp)."""
    import gzip

    return gzip.compress(table.to_csv(index=False, lineterminator="\n", float_format="%.6f").encode(), mtime=0)


def write_reference(table: pd.DataFrame, path: Path) -> None:
    from .atomic import atomic_write

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(reference_bytes(table)))


@lru_cache(maxsize=32)
def _load(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str})


def reference_targets(task, suite: str, root: Path = REFERENCE_DIR) -> pd.DataFrame | None:
    """The committed reference targets of ``task`` on ``suite`` (None where there are none)."""
    path = reference_path(suite, task, root)
    if not path.is_file():
        return None
    table = _load(str(path), path.stat().st_mtime_ns)
    if task.family != "detection":
        columns = [f"target:{c}" for c in _target_columns(task)]
        if not set(columns) <= set(table.columns):
            return None
        table = table[["image_id", *columns]]
    return canonical(task, table)
