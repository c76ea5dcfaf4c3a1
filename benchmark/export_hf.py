"""Every measured unit of every submission as a Hugging Face dataset: Parquet plus a dataset card.

``run_benchmark.py export --format hf OUT [--submissions-dir DIR] [--suite demo]`` writes::

    OUT/README.md                          the dataset card: YAML metadata (configs, features, licence)
                                           and a description of every column, the rules and the citation
    OUT/data/results-<suite>.parquet       config ``results`` (the default): one row per (submission, unit, metric)
    OUT/data/predictions-<suite>.parquet   config ``predictions``: one row per (submission, unit, test image)
    OUT/data/reported-paper.parquet        config ``reported``: the numbers printed in Liu et al.'s Tables 1-3

Each config has one split per suite (``paper``, ``demo``), so smoke-suite numbers never mix with
real ones. ``datasets.load_dataset(OUT)`` (or ``load_dataset(OUT, "predictions")``) reads it with
no network: the card names the Parquet files and their features, and nothing else is needed.

The results table is tidy: a unit's every numeric metric is a row (nested metrics flattened with
dots: ``auc_per_class.Edema``, ``floors.predict_nothing.dice``, ``reference.map``), beside the unit's
task, fraction, seed, encoder and checkpoint sha256, split manifest and id hashes, protocol and
harness versions, the submission's metadata and whether the submission validates
(:func:`benchmark.submissions.validate_submission`). ``ranking`` says which leaderboard table ranks on
the metric (``reference``: the reference code's rule, the paper's layout; ``sound``; both for
classification) and ``recomputed_value`` is the value the leaderboard recomputes from the predictions
file (:mod:`benchmark.scoring`).

The predictions config keeps every column of each ``<unit>.predictions.csv.gz`` under its own name,
as a list per image holding the values of the image's CSV rows in file order (one row for
classification and segmentation; detection files have an ``image`` row, ``gt`` rows and ``pred`` rows
per image), with ``row_index`` (the rows' positions in the file) and ``csv_columns`` (the file's
header): :func:`predictions_frame` turns a unit's rows back into the CSV's table.

Nothing here reaches the network; ``datasets`` and ``pyarrow`` are imported only by the export.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .errors import BenchmarkError

FORMATS = ("hf",)
EXPORT_MARKER = "<!-- written by medvlp-bench `run_benchmark.py export --format hf`; rewritten, never edited -->"
SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")  # what `datasets` accepts as a split name
DEFAULT_LICENSE = "apache-2.0"  # the harness's licence; each submission's own is a column

CITATION = """@article{liu2023utilizing,
  title   = {Utilizing Synthetic Data for Medical Vision-Language Pre-training: Bypassing the Need for Real Images},
  author  = {Liu, Che and Shah, Anand and Bai, Wenjia and Arcucci, Rossella},
  journal = {arXiv preprint arXiv:2310.07027},
  year    = {2023}
}

@inproceedings{wang2022mgca,
  title     = {Multi-Granularity Cross-modal Alignment for Generalized Medical Visual Representation Learning},
  author    = {Wang, Fuying and Zhou, Yuhao and Wang, Shujun and Vardhanabhuti, Varut and Yu, Lequan},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2022}
}"""


def _results_columns():
    """(name, arrow type, description) of the ``results`` config, in column order."""
    import pyarrow as pa

    s, i, f, b = pa.string(), pa.int64(), pa.float64(), pa.bool_()
    return [
        ("suite", s, "suite the unit ran on (`paper`, or `demo`: the SMOKE suite); also the split name"),
        ("submission", s, "submission folder under `submissions/`"),
        ("task", s, "task id (`run_benchmark.py --list-tasks`)"),
        ("family", s, "classification, segmentation, detection or zeroshot"),
        ("dataset", s, "downstream dataset"),
        ("fraction", i, "label fraction in percent (1, 10, 100)"),
        ("seed", i, "seed of the unit (label subset and head initialisation)"),
        ("unit", s, "`<task>_frac<F>_seed<S>`, the result file's name"),
        ("metric", s, "metric name; nested metrics flattened with dots (`auc_per_class.Edema`, `reference.map`)"),
        (
            "value",
            f,
            "the metric as the unit's result JSON records it (a fraction in [0, 1] for scores; counts "
            "as numbers); null where undefined (e.g. the AUC of a class with one label value)",
        ),
        ("headline", b, "true for the task's headline metric (`metric` of the result)"),
        (
            "ranking",
            s,
            "leaderboard table that ranks on this metric: `reference` (the reference code's rule, "
            "the paper's layout: `dice`, `map_reference`), `sound` (`dice_positive`, `map`), `reference+sound` "
            "(classification and zero-shot: one rule), empty otherwise",
        ),
        (
            "recomputed_value",
            f,
            "the value recomputed from the unit's predictions file by `benchmark.scoring`, "
            "as the leaderboard does; null for metrics it does not recompute or when the file does not check out",
        ),
        (
            "protocol_version",
            i,
            "version of the family's protocol the unit ran under (`benchmark/protocol_versions.py`)",
        ),
        ("protocol_current", b, "false: an older protocol version; the leaderboard leaves such units out"),
        ("schema_version", i, "result file schema version"),
        ("encoder_spec", s, "`--encoder` as given (checkpoint file name or spec such as `random:resnet50@0`)"),
        ("encoder_format", s, "checkpoint format the harness detected"),
        ("encoder_arch", s, "image encoder architecture"),
        ("checkpoint_sha256", s, "sha256 of the checkpoint (of the spec for random and module encoders)"),
        ("dataset_version", s, "dataset version the unit read (label files' digest, release)"),
        ("manifest_sha256", s, "sha256 of the split manifest"),
        ("train_ids_sha256", s, "sha256 of the unit's training ids"),
        ("val_ids_sha256", s, "sha256 of the validation ids"),
        ("test_ids_sha256", s, "sha256 of the test ids"),
        ("n_train", i, "training images of the unit"),
        ("n_val", i, "validation images"),
        ("n_test", i, "test images"),
        ("best_epoch", i, "epoch of the head that was tested (counted from 1 since result schema 3)"),
        ("epochs_run", i, "epochs trained before early stopping or the cap"),
        ("flags", s, "the result's flags as JSON (compatibility switches, `--limit`, exact mode)"),
        ("unit_key", s, "hash of everything that must match for a rerun to reuse the unit"),
        ("harness_version", s, "medvlp-bench version that produced the unit"),
        ("git_commit", s, "git commit of the harness that produced the unit"),
        ("git_dirty", b, "whether that checkout had uncommitted changes"),
        ("predictions_file", s, "the per-image predictions file beside the result"),
        ("predictions_sha256", s, "sha256 of that file's bytes; null when it is missing"),
        ("method", s, "submission.yaml `method`"),
        ("method_id", s, "submission.yaml `method_id` (groups a method's rows)"),
        ("paper", s, "submission.yaml `paper`"),
        ("code", s, "submission.yaml `code`"),
        ("architecture", s, "submission.yaml `architecture`"),
        ("pretraining_images", s, "real, synthetic, mixed, imagenet or none"),
        ("pretraining_generator", s, "generator of synthetic images (sd21, roentgen, other)"),
        ("pretraining_reports", s, "reports the pretraining used"),
        ("pretraining_mix_ratio", f, "share of synthetic images when mixed"),
        ("pretraining_dataset", s, "pretraining dataset"),
        ("pretraining_label", s, "the leaderboard's 'Pretraining images' cell (null when submission.yaml is invalid)"),
        ("checkpoint_url", s, "where the checkpoint can be obtained"),
        ("licence", s, "licence the submission declares (of its method and checkpoint)"),
        ("contact", s, "submission contact"),
        ("baseline", b, "measured reference row such as random init"),
        ("notes", s, "submission notes"),
        ("submission_valid", b, "whether the submission validates on this suite (the leaderboard shows only these)"),
        ("validation_problems", pa.list_(s), "every problem `validate-submission` finds on this suite"),
    ]


PREDICTION_KEYS = (
    ("suite", "suite (split name)"),
    ("submission", "submission folder"),
    ("task", "task id"),
    ("family", "task family"),
    ("fraction", "label fraction in percent"),
    ("seed", "seed"),
    ("unit", "`<task>_frac<F>_seed<S>`"),
    ("image_id", "test image id as in the predictions file"),
    ("row_index", "0-based positions of this image's rows in the predictions file"),
    ("csv_columns", "the predictions file's header, in order (`image_id` first)"),
)


@dataclass
class Export:
    """What :func:`export_hf` wrote."""

    out: Path
    suites: list[str]
    submissions: list[str]
    rows: dict[str, int]  # config -> rows
    units: int
    invalid: dict[str, list[str]] = field(default_factory=dict)  # "suite/submission" -> problems
    missing_predictions: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ reading
def flat_metrics(metrics: dict, prefix: str = "") -> list[tuple[str, float | None]]:
    """Every numeric leaf of a result's ``metrics`` as (dotted name, value); NaN becomes None.
    Strings and lists (``rule``, ``iou_thresholds``, ``threshold_split``) describe how a metric
    was computed and are left out."""
    out: list[tuple[str, float | None]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += flat_metrics(value, name + ".")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        else:
            out.append((name, None if math.isnan(float(value)) else float(value)))
    return out


def _text(value) -> str | None:
    return None if value is None else str(value)


def _metadata_columns(folder: Path) -> dict:
    """The submission.yaml fields of every row; read leniently, so an invalid file still exports
    (``submission_valid`` and ``validation_problems`` say what is wrong with it)."""
    from .submissions import load_metadata, metadata_path

    try:
        raw = yaml.safe_load(metadata_path(folder).read_text()) or {}
    except (OSError, yaml.YAMLError):
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    pretraining = raw.get("pretraining") if isinstance(raw.get("pretraining"), dict) else {}
    checkpoint = raw.get("checkpoint") if isinstance(raw.get("checkpoint"), dict) else {}
    try:
        label = load_metadata(folder).pretraining.label()
    except Exception:  # invalid metadata: validation names the problem
        label = None
    ratio = pretraining.get("mix_ratio")
    return {
        "method": _text(raw.get("method")),
        "method_id": _text(raw.get("method_id")),
        "paper": _text(raw.get("paper")),
        "code": _text(raw.get("code")),
        "architecture": _text(raw.get("architecture")),
        "pretraining_images": _text(pretraining.get("images")),
        "pretraining_generator": _text(pretraining.get("generator")),
        "pretraining_reports": _text(pretraining.get("reports")),
        "pretraining_mix_ratio": float(ratio)
        if isinstance(ratio, (int, float)) and not isinstance(ratio, bool)
        else None,
        "pretraining_dataset": _text(pretraining.get("dataset")),
        "pretraining_label": label,
        "checkpoint_url": _text(checkpoint.get("url")),
        "licence": _text(raw.get("licence")),
        "contact": _text(raw.get("contact")),
        "baseline": bool(raw.get("baseline", False)),
        "notes": _text(raw.get("notes")),
    }


def _ranking(task, metric: str) -> str:
    if task is None:
        return ""
    from .scoring import reference_key, sound_key

    tables = [name for name, key in (("reference", reference_key(task)), ("sound", sound_key(task))) if key == metric]
    return "+".join(tables)


def _recomputed(task, result, base: Path) -> dict[str, float]:
    """The scores the leaderboard recomputes from the unit's predictions ({} when they do not check out)."""
    from .result_checks import ResultCheckError, checked_scores

    if task is None:
        return {}
    try:
        scores = checked_scores(task, result, base)
    except (ResultCheckError, OSError, ValueError, KeyError):
        return {}
    out = {}
    for key in scores.scores:
        value = scores.value(key)
        out[key] = None if math.isnan(value) else float(value)
    return out


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _column_kind(series: pd.Series) -> str:
    kind = series.dtype.kind
    return {"i": "int", "u": "int", "f": "float", "b": "bool"}.get(kind, "string")


def _merge_kind(kinds: set[str]) -> str:
    if "string" in kinds:
        return "string"
    if "float" in kinds:
        return "float"
    if "int" in kinds:
        return "int"
    return "bool"


def _convert(values: list, kind: str) -> list:
    """Python values of one CSV column for an arrow list of ``kind``; NaN and empty cells become null."""

    def missing(v) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    if kind == "float":
        return [None if missing(v) else float(v) for v in values]
    if kind == "int":
        return [None if missing(v) else int(v) for v in values]
    if kind == "bool":
        return [None if missing(v) else bool(v) for v in values]
    return [None if missing(v) else str(v) for v in values]


@dataclass
class _Unit:
    suite: str
    submission: str
    result: object
    table: pd.DataFrame | None  # the predictions file (None when missing or unreadable)


def collect(submissions_dir: Path, suites: tuple[str, ...] | None = None, progress: bool = False):
    """(suites exported, result rows, units with their predictions tables, validation problems per
    ``suite/submission``). Unreadable result files are skipped here; validation names them.
    ``progress``: a bar on a terminal, one line per submission in a batch log."""
    from .progress import progress_bar
    from .protocol_versions import is_current, result_version
    from .registry import all_tasks
    from .result_checks import predictions_path
    from .results import read_result
    from .submissions import list_submissions, validate_submission

    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise BenchmarkError(f"--submissions-dir {submissions_dir}: no such folder")
    folders = list_submissions(submissions_dir)
    if not folders:
        raise BenchmarkError(
            f"{submissions_dir}: no submission (a folder with submission.yaml); "
            "create one with `run_benchmark.py --encoder ... --submission NAME`"
        )
    found = sorted({p.name for folder in folders for p in (folder / "results").glob("*") if p.is_dir()})
    wanted = list(suites) if suites else found
    absent = [s for s in wanted if s not in found]
    if absent:
        raise BenchmarkError(
            f"no submission under {submissions_dir} has results for suite {', '.join(absent)} "
            f"(suites with results: {', '.join(found) or 'none'})"
        )
    for suite in wanted:
        if not SPLIT_NAME.match(suite):
            raise BenchmarkError(
                f"suite folder {suite!r} cannot be a dataset split name (letters, digits, '_' and '.' only): "
                "rename it or pass --suite"
            )
    tasks = all_tasks()
    rows: list[dict] = []
    units: list[_Unit] = []
    problems: dict[str, list[str]] = {}
    todo = [(suite, folder) for suite in wanted for folder in folders if (folder / "results" / suite).is_dir()]
    with progress_bar(len(todo), "export", "submissions", enabled=progress) as bar:
        for suite, folder in todo:
            base = folder / "results" / suite
            found_problems = validate_submission(folder, (suite,))
            problems[f"{suite}/{folder.name}"] = found_problems
            metadata = _metadata_columns(folder)
            for path in sorted(base.glob("*/*.json")):
                try:
                    result = read_result(path)
                except Exception:  # named in validation_problems
                    continue
                task = tasks.get(result.unit.task)
                pred_path = predictions_path(result, base)
                table = None
                if pred_path.is_file():
                    try:
                        table = pd.read_csv(pred_path, dtype={"image_id": str})
                    except Exception:
                        table = None
                units.append(_Unit(suite, folder.name, result, table))
                recomputed = _recomputed(task, result, base)
                training, data, provenance = result.training, result.data, result.provenance
                git = provenance.get("git") or {}
                unit_columns = {
                    "suite": suite,
                    "submission": folder.name,
                    "task": result.unit.task,
                    "family": result.family,
                    "dataset": result.dataset,
                    "fraction": result.unit.fraction,
                    "seed": result.unit.seed,
                    "unit": result.unit.name,
                    "protocol_version": result_version(result),
                    "protocol_current": is_current(result),
                    "schema_version": result.schema_version,
                    "encoder_spec": _text(result.encoder.get("spec")),
                    "encoder_format": _text(result.encoder.get("format")),
                    "encoder_arch": _text(result.encoder.get("arch")),
                    "checkpoint_sha256": _text(result.encoder.get("sha256")),
                    "dataset_version": _text(data.get("dataset_version")),
                    "manifest_sha256": _text(data.get("manifest_sha256")),
                    "train_ids_sha256": _text(data.get("train_ids_sha256")),
                    "val_ids_sha256": _text(data.get("val_ids_sha256")),
                    "test_ids_sha256": _text(data.get("test_ids_sha256")),
                    "n_train": data.get("n_train"),
                    "n_val": data.get("n_val"),
                    "n_test": data.get("n_test"),
                    "best_epoch": training.get("best_epoch"),
                    "epochs_run": training.get("epochs_run"),
                    "flags": json.dumps(result.flags, sort_keys=True),
                    "unit_key": result.unit_key,
                    "harness_version": _text(provenance.get("harness_version")),
                    "git_commit": _text(git.get("commit")),
                    "git_dirty": git.get("dirty"),
                    "predictions_file": pred_path.name,
                    "predictions_sha256": _file_sha256(pred_path),
                    **metadata,
                    "submission_valid": not found_problems,
                    "validation_problems": found_problems,
                }
                for name, value in flat_metrics(result.metrics):
                    rows.append(
                        {
                            **unit_columns,
                            "metric": name,
                            "value": value,
                            "headline": name == result.metric,
                            "ranking": _ranking(task, name),
                            "recomputed_value": recomputed.get(name),
                        }
                    )
            bar.update(1)
    return wanted, rows, units, problems


# ------------------------------------------------------------------------------ tables
def results_table(rows: list[dict]):
    import pyarrow as pa

    schema = pa.schema([pa.field(name, kind) for name, kind, _ in _results_columns()])
    return pa.Table.from_pylist(rows, schema=schema)


def prediction_column_kinds(units: list[_Unit]) -> dict[str, str]:
    """Every predictions column (other than ``image_id``) over all units, in first-seen order,
    with one type for all: string if any unit's column is text, else float, int, bool."""
    kinds: dict[str, set[str]] = {}
    for unit in units:
        if unit.table is None:
            continue
        for column in unit.table.columns:
            if column != "image_id":
                kinds.setdefault(column, set()).add(_column_kind(unit.table[column]))
    return {column: _merge_kind(found) for column, found in kinds.items()}


def predictions_table(units: list[_Unit], suite: str, kinds: dict[str, str]):
    import numpy as np
    import pyarrow as pa

    arrow = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "string": pa.string()}
    fields = [
        pa.field("suite", pa.string()),
        pa.field("submission", pa.string()),
        pa.field("task", pa.string()),
        pa.field("family", pa.string()),
        pa.field("fraction", pa.int64()),
        pa.field("seed", pa.int64()),
        pa.field("unit", pa.string()),
        pa.field("image_id", pa.string()),
        pa.field("row_index", pa.list_(pa.int64())),
        pa.field("csv_columns", pa.list_(pa.string())),
    ] + [pa.field(column, pa.list_(arrow[kind])) for column, kind in kinds.items()]
    columns: dict[str, list] = {f.name: [] for f in fields}
    for unit in units:
        if unit.suite != suite or unit.table is None:
            continue
        table, result = unit.table, unit.result
        codes, images = pd.factorize(table["image_id"].astype(str), sort=False)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(images) + 1))
        groups = [order[bounds[k] : bounds[k + 1]].tolist() for k in range(len(images))]
        n = len(images)
        columns["suite"] += [suite] * n
        columns["submission"] += [unit.submission] * n
        columns["task"] += [result.unit.task] * n
        columns["family"] += [result.family] * n
        columns["fraction"] += [result.unit.fraction] * n
        columns["seed"] += [result.unit.seed] * n
        columns["unit"] += [result.unit.name] * n
        columns["image_id"] += [str(image) for image in images]
        columns["row_index"] += groups
        columns["csv_columns"] += [list(map(str, table.columns))] * n
        for column, kind in kinds.items():
            if column not in table.columns:
                columns[column] += [None] * n
                continue
            values = _convert(table[column].tolist(), kind)
            columns[column] += [[values[r] for r in rows] for rows in groups]
    return pa.Table.from_pydict(columns, schema=pa.schema(fields))


def reported_table():
    """Liu et al.'s Tables 1-3 as printed (``benchmark/data/paper_tables.csv``)."""
    import pyarrow as pa

    from .leaderboard import reported_frame

    frame = reported_frame()
    rows = [
        {
            "family": r["task"],
            "dataset": r["dataset"],
            "metric": r["metric"],
            "fraction": int(r["fraction"]),
            "method": r["method"],
            "pretraining_images": r["pretraining_images"],
            "value": float(r["value"]) if r["value"] not in ("", "-") else None,
        }
        for r in frame.to_dict("records")
    ]
    schema = pa.schema(
        [
            ("family", pa.string()),
            ("dataset", pa.string()),
            ("metric", pa.string()),
            ("fraction", pa.int64()),
            ("method", pa.string()),
            ("pretraining_images", pa.string()),
            ("value", pa.float64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def predictions_frame(predictions, submission: str, unit: str, suite: str | None = None) -> pd.DataFrame:
    """One unit's rows of the ``predictions`` config (a ``datasets.Dataset`` or its pandas
    frame) back as the predictions file's table: same columns in the same order, same rows in
    the same order (``pd.read_csv(file, dtype={"image_id": str})`` of the original equals it up to
    the column types the export unified, e.g. an int column stored as float)."""
    frame = predictions if isinstance(predictions, pd.DataFrame) else predictions.to_pandas()
    keep = (frame["submission"] == submission) & (frame["unit"] == unit)
    if suite is not None:
        keep &= frame["suite"] == suite
    rows = frame[keep]
    if rows.empty:
        raise KeyError(f"no predictions of unit {unit!r} of submission {submission!r} in this dataset")
    if rows["suite"].nunique() > 1:
        raise KeyError(
            f"unit {unit!r} of {submission!r} is in several suites {sorted(rows['suite'].unique())}: pass suite"
        )
    header = list(rows["csv_columns"].iloc[0])
    records: list[tuple[int, dict]] = []
    for row in rows.to_dict("records"):
        for k, position in enumerate(row["row_index"]):
            record = {"image_id": row["image_id"]}
            for column in header[1:]:
                value = row[column][k]
                record[column] = float("nan") if value is None else value
            records.append((int(position), record))
    records.sort(key=lambda pair: pair[0])
    return pd.DataFrame([record for _, record in records], columns=header)


# ------------------------------------------------------------------------------ the card
def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def _feature_table(rows: list[tuple[str, str]]) -> str:
    lines = ["| column | meaning |", "| --- | --- |"]
    lines += [f"| `{name}` | {text} |" for name, text in rows]
    return "\n".join(lines)


def card_body(export: Export, kinds: dict[str, str], provenance: dict) -> str:
    from . import __version__
    from .leaderboard import WHY_TWO_TABLES

    smoke = (
        "> **The `demo` split is the SMOKE suite**: synthetic images in the official layouts. Its numbers show "
        "what the tables look like and are NOT comparable with published results.\n\n"
        if "demo" in export.suites
        else ""
    )
    splits = ", ".join(f"`{s}`" for s in export.suites)
    validity = []
    for key, problems in sorted(export.invalid.items()):
        validity.append(f"- `{key}`: does not validate ({len(problems)} problem(s), e.g. {problems[0]})")
    validity_text = (
        "\n".join(validity)
        if validity
        else "Every exported submission validates (`run_benchmark.py validate-submission`)."
    )
    prediction_columns = "\n".join(f"- `{name}` (list of {kind})" for name, kind in kinds.items())
    lines = [
        EXPORT_MARKER,
        "",
        "# medvlp-bench results",
        "",
        smoke + "Every measured unit (task x label fraction x seed) of every submission to the medvlp-bench harness, "
        "which scores frozen chest X-ray image encoders on the downstream suite of MGCA (Wang et al., NeurIPS 2022) "
        "that the synthetic-data MedVLP papers report: linear-probe classification (CheXpert, RSNA Pneumonia, "
        "COVIDx), U-Net segmentation (SIIM-ACR, RSNA), YOLOv3 detection (RSNA, Object-CXR) and zero-shot tasks.",
        "",
        f"- submissions: {', '.join(f'`{s}`' for s in export.submissions)}; {export.units} units; splits (one per "
        f"suite): {splits}",
        f"- rows: results {export.rows['results']}, predictions {export.rows['predictions']}, "
        f"reported {export.rows['reported']}",
        "",
        "## Loading (offline)",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'results = load_dataset("PATH/TO/THIS/FOLDER")  # config "results" (default)',
        'predictions = load_dataset("PATH/TO/THIS/FOLDER", "predictions")',
        'reported = load_dataset("PATH/TO/THIS/FOLDER", "reported")',
        f'rows = results["{export.suites[0]}"].to_pandas()',
        'table = rows[rows.headline].pivot_table(index="submission", columns=["task", "fraction"], values="value")',
        "```",
        "",
        "Only the files of this folder are read (`HF_DATASETS_OFFLINE=1` works).",
        "",
        "## Config `results`: one row per (submission, unit, metric)",
        "",
        "Tidy: a unit's every numeric metric is one row, beside the unit's and the submission's description "
        "(repeated on each of its rows). Values are fractions in [0, 1] (the leaderboards print them x100).",
        "",
        _feature_table([(name, text) for name, _, text in _results_columns()]),
        "",
        "### Reference rule and sound metrics",
        "",
        WHY_TWO_TABLES,
        "",
        "Segmentation units carry `dice` (the reference rule: an image with an empty ground truth scores 1 when "
        "the prediction is empty), `dice_positive` (Dice over the test images with a finding), `specificity` "
        "(share of negative test images predicted empty), `dice_positive_dataset` and the two trivial heads' "
        "values under every rule (`floors.predict_nothing.*`, `floors.predict_everything.*`). Detection units carry "
        "`map` (mAP@[0.40:0.75] over all test images, with `ap@0.40` ... `ap@0.75` and counts) and `map_reference` "
        "(MGCA's rule: only images with a ground-truth box and a prediction count; its details under `reference.*`). "
        "Compare numbers only within one `protocol_version` of a family.",
        "",
        "## Config `predictions`: one row per (submission, unit, test image)",
        "",
        "The per-image predictions the harness wrote beside each result (`<unit>.predictions.csv.gz`), from which "
        "every leaderboard number is recomputed. Every column of those files keeps its name; since files of "
        "different families have different columns, each column is a LIST per image holding the values of the "
        "image's rows in the file, in file order: one row for classification and segmentation files, and for "
        "detection the image's `image` row (its size), its `gt` rows (ground-truth boxes) and its `pred` rows "
        "(boxes with `score`). A column a unit's file does not have is null on that unit's rows; an empty cell is a "
        "null inside the list.",
        "",
        _feature_table([(name, text) for name, text in PREDICTION_KEYS]),
        "",
        "Prediction columns (from the files):",
        "",
        prediction_columns or "- none",
        "",
        "A unit's file, back as a table: `benchmark.export_hf.predictions_frame(predictions['SUITE'], SUBMISSION, "
        "UNIT)` (or explode the lists and sort by `row_index`).",
        "",
        "## Config `reported`: the published numbers",
        "",
        "The values printed in Tables 1-3 of Liu et al. (ResNet-50; x100, the reference rule; null where the "
        "paper prints '-'), split `paper`. They are reported, not measured: never mix them with measured rows.",
        "",
        "## Submissions",
        "",
        validity_text,
        "",
        "## Provenance",
        "",
        f"Exported by medvlp-bench {__version__} (git commit {provenance.get('commit') or 'unknown'}"
        f"{', uncommitted changes' if provenance.get('dirty') else ''}) with `run_benchmark.py export --format hf`. "
        "Each row records the harness version and commit that produced its unit.",
        "",
        "## Licence",
        "",
        "The tables are released under the licence in this card's metadata; each submission declares the licence "
        "of its method and checkpoint (`licence`). Image ids name images of the downstream datasets, which keep "
        "their own terms of use (CheXpert, RSNA, COVIDx, SIIM-ACR, Object-CXR); no image is included.",
        "",
        "## Citation",
        "",
        "The reported tables are from Liu et al.; the downstream protocol is MGCA's:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(out: Path, export: Export, tables: dict, kinds: dict[str, str], license: str) -> None:
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard, DatasetCardData

    from .provenance import git_state

    configs = []
    infos = {}
    for config, per_split in tables.items():
        splits = SplitDict()
        for split, (path, table) in per_split.items():
            splits.add(SplitInfo(name=split, num_bytes=table.nbytes, num_examples=table.num_rows))
        first = next(iter(per_split.values()))[1]
        infos[config] = DatasetInfo(
            features=Features.from_arrow_schema(first.schema),
            splits=splits,
            download_size=sum((out / path).stat().st_size for path, _ in per_split.values()),
            dataset_size=sum(table.nbytes for _, table in per_split.values()),
        )
        entry = {
            "config_name": config,
            "data_files": [{"split": split, "path": path} for split, (path, _) in per_split.items()],
        }
        if config == "results":
            entry["default"] = True
        configs.append(entry)
    card_data = DatasetCardData(
        license=license,
        pretty_name="medvlp-bench results",
        tags=["medical", "chest-x-ray", "benchmark", "leaderboard", "medvlp-bench"],
        size_categories=[_size_category(max(export.rows.values()))],
        configs=configs,
    )
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    body = card_body(export, kinds, git_state())
    DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}").save(out / "README.md")


# ------------------------------------------------------------------------------ driver
def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"{out} is a file: give the folder the dataset is written to")
    if out.is_dir() and any(out.iterdir()):
        card = out / "README.md"
        previous = card.is_file() and EXPORT_MARKER in card.read_text(errors="replace")
        if not previous:
            raise BenchmarkError(
                f"{out} is not empty and does not hold an earlier export (no README.md written by "
                "`run_benchmark.py export`): give an empty or new folder"
            )
        if not overwrite:
            raise BenchmarkError(f"{out} holds an earlier export: pass --overwrite to replace it, or give a new folder")


def export_hf(
    out: Path,
    submissions_dir: Path | None = None,
    suites: tuple[str, ...] | None = None,
    license: str = DEFAULT_LICENSE,
    overwrite: bool = False,
    progress: bool = False,
) -> Export:
    """Write the dataset into ``out`` (module docstring). The folder is built beside ``out`` and
    swapped in when complete, so a failure leaves ``out`` as it was."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .submissions import SUBMISSIONS_DIR

    out = Path(out)
    _check_out(out, overwrite)
    submissions_dir = Path(submissions_dir or SUBMISSIONS_DIR)
    wanted, rows, units, problems = collect(submissions_dir, suites, progress=progress)
    kinds = prediction_column_kinds(units)
    stage = out.with_name(f".{out.name}.export-{os.getpid()}")
    previous = out.with_name(f".{out.name}.previous-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        (stage / "data").mkdir(parents=True)
        tables: dict[str, dict] = {"results": {}, "predictions": {}, "reported": {}}
        all_results = results_table(rows)
        for suite in wanted:
            tables["results"][suite] = all_results.filter(pc.equal(all_results["suite"], suite))
            tables["predictions"][suite] = predictions_table(units, suite, kinds)
        tables["reported"]["paper"] = reported_table()
        written: dict[str, dict] = {}
        for config, per_split in tables.items():
            written[config] = {}
            for split, table in per_split.items():
                path = f"data/{config}-{split}.parquet"
                pq.write_table(table, stage / path)
                written[config][split] = (path, table)
        export = Export(
            out=out,
            suites=list(wanted),
            submissions=sorted({u.submission for u in units}),
            rows={config: sum(t.num_rows for t in per_split.values()) for config, per_split in tables.items()},
            units=len(units),
            invalid={key: found for key, found in problems.items() if found},
            missing_predictions=[f"{u.suite}/{u.submission}/{u.result.unit.name}" for u in units if u.table is None],
        )
        write_card(stage, export, written, kinds, license)
        if out.exists():
            os.replace(out, previous)
        os.replace(stage, out)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return export


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="run_benchmark.py export",
        description="Export every measured unit of every submission (and the per-image predictions) as a dataset: "
        "--format hf writes Parquet files and a dataset card that datasets.load_dataset(OUT) reads offline.",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to write (new or empty, or an earlier export)")
    parser.add_argument("--format", choices=FORMATS, required=True, help="hf: a Hugging Face dataset folder")
    parser.add_argument(
        "--submissions-dir",
        type=Path,
        default=None,
        help="folder of submissions (default: the repository's submissions/)",
    )
    parser.add_argument(
        "--suite", default=None, help="comma-separated suites to export (default: every suite with results)"
    )
    parser.add_argument(
        "--license", default=DEFAULT_LICENSE, help=f"licence id in the card's metadata (default {DEFAULT_LICENSE})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress (default: a bar on a terminal, one line per submission otherwise)",
    )
    args = parser.parse_args(argv)
    suites = tuple(s for s in args.suite.split(",") if s) if args.suite else None
    export = export_hf(args.out, args.submissions_dir, suites, args.license, args.overwrite, not args.no_progress)
    print(
        f"wrote {export.out}: {export.units} units of {len(export.submissions)} submission(s), suites "
        f"{', '.join(export.suites)}; rows: " + ", ".join(f"{config} {n}" for config, n in export.rows.items())
    )
    for key, problems in sorted(export.invalid.items()):
        print(f"  {key} does not validate ({len(problems)} problem(s); see its validation_problems column)")
    for unit in export.missing_predictions:
        print(f"  {unit}: no readable predictions file (absent from the predictions config)")
    print(f"load it with: datasets.load_dataset({str(export.out)!r})")
    return 0
