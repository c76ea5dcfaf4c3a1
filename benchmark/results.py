"""Result files: one JSON per (task, fraction, seed), written atomically, plus per-image
predictions beside it (``<unit>.predictions.csv.gz``) so metrics can be recomputed.

Layout: ``<output>/<task>/<task>_frac<F>_seed<S>.json``. ``SCHEMA_VERSION`` rises when
fields are added or change meaning; readers keep accepting older versions.

Schema versions: 1, the first; 2 adds ``protocol_version`` (the version of the family's
protocol the unit was produced under, :mod:`benchmark.protocol_versions`). A schema-1 file
has no such field and was produced under protocol v1; it reads with ``protocol_version``
None, which :func:`benchmark.protocol_versions.result_version` counts as 1. (Schema 2 exists
so that an older harness refuses a newer file with "unsupported result schema version"
instead of a validation error on the unknown field.) 3: every family counts epochs from 1
(``training.best_epoch`` and ``training.history[k].epoch``; schema-2 segmentation and
detection files counted from 0) and every result carries the same training fields
(``best_epoch``, ``epochs_run``, ``best_val_loss``, ``history``: benchmark/unit_outcome.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from .atomic import atomic_write, atomic_write_text

SCHEMA_VERSION = 3


class UnitId(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    task: str
    fraction: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.task}_frac{self.fraction}_seed{self.seed}"


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    unit: UnitId
    suite: str
    family: str
    dataset: str
    metric: str
    value: float  # the task's headline metric, as a fraction in [0, 1]
    metrics: dict[str, Any]  # every metric computed (headline included)
    encoder: dict[str, Any]  # spec, format, sha256, arch, contract, load report
    data: dict[str, Any]  # dataset version, manifest hash, split sizes and id hashes
    hyperparameters: dict[str, Any]
    training: dict[str, Any]  # best epoch, epochs run, history
    timings: dict[str, float]  # seconds per phase
    provenance: dict[str, Any]
    flags: dict[str, Any] = {}  # compatibility switches, --limit, exact mode
    unit_key: str  # hash of everything that must match for a rerun to reuse this result
    # the family's protocol version (benchmark.protocol_versions); None in files written
    # before versions were recorded, which were produced under v1
    protocol_version: int | None = None
    predictions_file: str | None = None


def unit_paths(output: Path, unit: UnitId) -> tuple[Path, Path]:
    folder = output / unit.task
    return folder / f"{unit.name}.json", folder / f"{unit.name}.predictions.csv.gz"


def write_result(output: Path, result: Result, predictions: pd.DataFrame | None) -> Path:
    json_path, pred_path = unit_paths(output, result.unit)
    if predictions is not None:  # atomic: a failed write (full disk) leaves no temp file behind
        # gzip.compress writes no file name and, with mtime 0, no time into the header: the same
        # predictions give the same bytes (pandas' gzip writer stores the temporary file's name)
        csv_bytes = predictions.to_csv(index=False, lineterminator="\n").encode()
        atomic_write(pred_path, lambda tmp: tmp.write_bytes(gzip.compress(csv_bytes, compresslevel=9, mtime=0)))
        result.predictions_file = pred_path.name
    # the JSON is written last: its presence means the unit is complete
    atomic_write_text(json_path, result.model_dump_json(indent=2) + "\n")
    return json_path


def read_result(path: Path) -> Result:
    data = json.loads(Path(path).read_text())
    version = data.get("schema_version")
    if version is None or version > SCHEMA_VERSION:
        raise ValueError(
            f"{path}: unsupported result schema version {version} (this harness reads <= {SCHEMA_VERSION})"
        )
    return Result.model_validate(data)


def read_results(output: Path) -> list[Result]:
    results = []
    for path in sorted(Path(output).glob("*/*.json")):
        try:
            results.append(read_result(path))
        except (ValueError, json.JSONDecodeError):
            continue
    return results
