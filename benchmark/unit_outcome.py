"""What a family's unit run returns, and how the runner turns it into a :class:`Result`.

A family computes; the runner records. ``family.run_unit(ctx, data, unit)`` returns a
:class:`UnitOutcome` (metrics, per-image predictions, what the unit trained on, its settings,
its :class:`TrainingLog` and timings); :func:`build_result` adds what every result carries
the same way (unit, suite, encoder, provenance, flags, protocol version, the headline value
read from ``metrics[task.metric]`` and the unit key the runner computed before the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .results import Result, UnitId


@dataclass
class TrainingLog:
    """How a head was trained. Epochs are counted from 1 in every family: ``history[k]["epoch"]
    == k + 1`` and ``best_epoch`` is the epoch whose head was kept (``None`` when nothing was
    trained, as in zero-shot units). ``details`` holds family-specific facts (feature-cache
    statistics, the detection selection rule ...)."""

    best_epoch: int | None
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_loss: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "best_val_loss": self.best_val_loss,
            "history": self.history,
            **self.details,
        }


@dataclass
class UnitOutcome:
    metrics: dict[str, Any]  # every metric computed; the task's headline metric among them
    predictions: pd.DataFrame | None  # per-image predictions on the test split
    data: dict[str, Any]  # dataset version, manifest hash, split sizes and id hashes
    hyperparameters: dict[str, Any]
    training: TrainingLog
    timings: dict[str, float]
    flags: dict[str, Any] = field(default_factory=dict)  # family-specific switches beside ctx.flags
    provenance: dict[str, Any] = field(default_factory=dict)  # beside the harness provenance
    encoder: dict[str, Any] = field(default_factory=dict)  # beside the encoder identity (zero-shot: text side)


def build_result(ctx, task, unit: UnitId, outcome: UnitOutcome, unit_key: str) -> Result:
    """The :class:`Result` of a finished unit (the only place results are built)."""
    header = ctx.result_header(task, unit)
    header["encoder"].update(outcome.encoder)
    header["provenance"].update(outcome.provenance)
    flags = {**ctx.flags, **outcome.flags, **({"limit": ctx.limit} if ctx.limit is not None else {})}
    return Result(
        **header,
        value=float(outcome.metrics[task.metric]),
        metrics=outcome.metrics,
        data=outcome.data,
        hyperparameters=outcome.hyperparameters,
        training=outcome.training.to_dict(),
        timings=outcome.timings,
        flags=flags,
        unit_key=unit_key,
    )
