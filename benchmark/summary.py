"""Summary tables of results: task x label fraction, mean over seeds with spread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tabulate import tabulate

from .results import Result


# metrics printed beside the headline: the sound segmentation metrics (the headline Dice is
# the reference rule, which predicting nothing wins) and detection's reference-rule mAP
COMPANION_METRICS = {"segmentation": ("dice_positive", "specificity"), "detection": ("map_reference",)}


def results_frame(results: list[Result]) -> pd.DataFrame:
    rows = []
    for r in results:
        unit = {"task": r.unit.task, "fraction": r.unit.fraction, "seed": r.unit.seed, "suite": r.suite}
        rows.append({**unit, "metric": r.metric, "value": 100 * r.value})
        for key in COMPANION_METRICS.get(r.family, ()):
            value = r.metrics.get(key)
            if isinstance(value, (int, float)):
                rows.append({**unit, "metric": key, "value": 100 * float(value)})
    return pd.DataFrame(rows)


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
    order = {metric: k for k, metric in enumerate(dict.fromkeys(frame["metric"]))}
    keys = sorted(frame.groupby(["task", "metric"]).groups, key=lambda key: (key[0], order[key[1]]))
    for task, metric in keys:
        group = frame[(frame["task"] == task) & (frame["metric"] == metric)]
        row = [task, metric]
        for fraction in fractions:
            row.append(format_cell(group.loc[group["fraction"] == fraction, "value"].tolist()))
        rows.append(row)
    headers = ["task", "metric"] + [f"{f}%" for f in fractions]
    return tabulate(rows, headers=headers, tablefmt=tablefmt)
