"""Summary tables of results: task x label fraction, mean over seeds with spread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tabulate import tabulate

from .results import Result


def results_frame(results: list[Result]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"task": r.unit.task, "fraction": r.unit.fraction, "seed": r.unit.seed, "metric": r.metric, "value": 100 * r.value, "suite": r.suite}
            for r in results
        ]
    )


def format_cell(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} (n={len(values)})"


def summary_table(results: list[Result], tablefmt: str = "github") -> str:
    """Rows: tasks; columns: label fractions; cells: mean ± sample std over seeds (in %)."""
    if not results:
        return "(no results)"
    frame = results_frame(results)
    fractions = sorted(frame["fraction"].unique())
    rows = []
    for (task, metric), group in frame.groupby(["task", "metric"], sort=True):
        row = [task, metric]
        for fraction in fractions:
            row.append(format_cell(group.loc[group["fraction"] == fraction, "value"].tolist()))
        rows.append(row)
    headers = ["task", "metric"] + [f"{f}%" for f in fractions]
    return tabulate(rows, headers=headers, tablefmt=tablefmt)
