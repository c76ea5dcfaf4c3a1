"""Leaderboards: markdown generated from ``submissions/`` and the reported numbers.

Never edit ``leaderboards/`` by hand: ``run_benchmark.py leaderboard`` rewrites it, and a
test fails when the committed files differ from what the results produce.

Per suite (``paper``; ``demo`` = the smoke suite) and task family: one table of MEASURED
rows (one per submission; mean over seeds with a 95% bootstrap interval over test images and
seeds; best per column in bold; † = statistically tied with the best by a paired bootstrap;
▲/▼ = difference to the same method's real-image row) and, for the paper suite, a separate
table of numbers REPORTED by Liu et al. (Tables 1-3 of "Utilizing Synthetic Data for Medical
Vision-Language Pre-training"), never mixed with measured rows. Plus a label-efficiency
plot per task and a one-number summary per method (mean over tasks at each fraction).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .registry import all_tasks
from .statistics import CellStats, cell_stats, tied_with_best
from .submissions import SubmissionMetadata, list_submissions, load_metadata, submission_results

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "paper_tables.csv"
LEADERBOARDS = ROOT / "leaderboards"
FAMILY_ORDER = ("classification", "segmentation", "detection", "zeroshot")
FAMILY_TITLES = {"classification": "Classification (linear probe)", "segmentation": "Segmentation (U-Net decoder, Dice)", "detection": "Detection (YOLOv3 head, mAP@[0.40:0.75])", "zeroshot": "Zero-shot (classification AUC, grounding Dice; no training)"}
DATASET_TITLES = {"chexpert": "CheXpert", "rsna": "RSNA", "covidx": "COVIDx", "siim": "SIIM", "object_cxr": "Object-CXR"}
REFERENCE_DATASET = {"objectcxr": "object_cxr"}  # paper_tables.csv name -> task dataset name
IMAGES_ORDER = {"none": 0, "imagenet": 1, "real": 2, "synthetic": 3, "mixed": 4}
GENERATOR_TITLES = {"sd": "SD 2.1", "roentgen": "RoentGen", "real": "real", "none": "none", "imagenet": "ImageNet"}
METHOD_TITLES = {"random": "Random init", "imagenet": "ImageNet init", "convirt": "ConVIRT", "gloria": "GLoRIA", "mgca": "MGCA"}


@dataclass
class Row:
    metadata: SubmissionMetadata
    cells: dict[tuple[str, int], CellStats]

    @property
    def images_key(self) -> tuple:
        p = self.metadata.pretraining
        return (not self.metadata.baseline, self.metadata.method_id, IMAGES_ORDER[p.images], p.generator or "", self.metadata.name)


DATASET_ORDER = ("chexpert", "rsna", "covidx", "siim", "object_cxr")  # as in the paper's tables


def column_title(task, fraction: int) -> str:
    """``CheXpert 10%``; zero-shot columns have no label fraction: ``RSNA grounding Dice``."""
    if task.family == "zeroshot":
        return f"{DATASET_TITLES[task.dataset]} {getattr(task, 'mode', '')} {task.metric.upper() if task.metric == 'auc' else task.metric.capitalize()}".replace("  ", " ")
    return f"{DATASET_TITLES[task.dataset]} {fraction}%"


def family_tasks(family: str) -> list:
    tasks = [t for t in all_tasks().values() if t.family == family]
    return sorted(tasks, key=lambda t: (DATASET_ORDER.index(t.dataset) if t.dataset in DATASET_ORDER else 99, t.id))


def measured_rows(suite: str, root: Path) -> list[Row]:
    rows = []
    for folder in list_submissions(root):
        try:
            metadata = load_metadata(folder)
        except Exception:
            continue  # invalid submissions are reported by validate-submission, not shown
        pairs = submission_results(folder, suite)
        if not pairs:
            continue
        groups: dict[tuple[str, int], list] = {}
        for result, base in pairs:
            groups.setdefault((result.unit.task, result.unit.fraction), []).append((result, base))
        cells = {}
        for key, members in sorted(groups.items()):
            members.sort(key=lambda pair: pair[0].unit.seed)
            cells[key] = cell_stats([r for r, _ in members], {id(r): b for r, b in members})
        rows.append(Row(metadata, cells))
    return sorted(rows, key=lambda row: row.images_key)


def delta_marker(value: float, reference: float | None) -> str:
    if reference is None or np.isnan(reference):
        return ""
    diff = value - reference
    arrow = "▲" if diff > 0 else ("▼" if diff < 0 else "=")
    return f" {arrow}{abs(diff):.1f}"


def measured_table(rows: list[Row], tasks: list) -> str:
    columns = [(t.id, f) for t in tasks for f in t.fractions]
    header = ["Method", "Pretraining images"] + [column_title(t, f) for t in tasks for f in t.fractions]
    best: dict = {}
    for column in columns:
        present = [row for row in rows if column in row.cells]
        if present:
            best[column] = max(present, key=lambda row: row.cells[column].mean)
    real_rows = {row.metadata.method_id: row for row in rows if row.metadata.pretraining.images == "real"}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.metadata.method, row.metadata.pretraining.label()]
        reference = real_rows.get(row.metadata.method_id)
        for column in columns:
            stats = row.cells.get(column)
            if stats is None:
                cells.append("–")
                continue
            text = f"{stats.mean:.1f}"
            if best.get(column) is row:
                text = f"**{text}**"
            elif tied_with_best(stats, best[column].cells[column]):
                text += "†"
            text += f" [{stats.low:.1f}, {stats.high:.1f}]"
            if reference is not None and reference is not row and column in reference.cells:
                text += delta_marker(stats.mean, reference.cells[column].mean)
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reported_frame() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_CSV, dtype=str, keep_default_na=False)


def reported_table(family: str, tasks: list) -> str:
    frame = reported_frame()
    frame = frame[frame["task"] == family]
    datasets = [t.dataset for t in tasks]
    frame = frame.assign(dataset=frame["dataset"].map(lambda d: REFERENCE_DATASET.get(d, d)))
    frame = frame[frame["dataset"].isin(datasets)]
    header = ["Method", "Pretraining images"] + [column_title(t, f) for t in tasks for f in t.fractions]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    keys = list(dict.fromkeys(zip(frame["method"], frame["pretraining_images"])))
    for method, images in keys:
        own = frame[(frame["method"] == method) & (frame["pretraining_images"] == images)]
        real = frame[(frame["method"] == method) & (frame["pretraining_images"] == "real")]
        cells = [f"{METHOD_TITLES.get(method, method)} (reported)", GENERATOR_TITLES.get(images, images)]
        for task in tasks:
            for fraction in task.fractions:
                hit = own[(own["dataset"] == task.dataset) & (own["fraction"] == str(fraction))]
                value = hit["value"].iloc[0] if len(hit) else ""
                text = f"_{value}_" if value else "-"
                if value and images not in ("real", "none", "imagenet") and len(real):
                    ref = real[(real["dataset"] == task.dataset) & (real["fraction"] == str(fraction))]["value"]
                    if len(ref) and ref.iloc[0]:
                        text += delta_marker(float(value), float(ref.iloc[0]))
                cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def efficiency_plot(task, rows: list[Row], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(row, [(f, row.cells[(task.id, f)]) for f in task.fractions if (task.id, f) in row.cells]) for row in rows]
    series = [(row, points) for row, points in series if points]
    if not series:
        return False
    figure, axis = plt.subplots(figsize=(5, 3.4), dpi=100)
    for row, points in series:
        xs = [f for f, _ in points]
        ys = np.array([s.mean for _, s in points])
        low = ys - np.array([s.low for _, s in points])
        high = np.array([s.high for _, s in points]) - ys
        axis.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=f"{row.metadata.method} ({row.metadata.pretraining.label()})")
    axis.set_xscale("log")
    axis.set_xticks(list(task.fractions), [f"{f}%" for f in task.fractions])
    axis.set_xlabel("labelled training images")
    axis.set_ylabel(f"{task.metric} (%)")
    axis.set_title(task.id)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    path.write_bytes(buffer.getvalue())
    return True


def summary_table(rows: list[Row]) -> str:
    fractions = sorted({f for row in rows for (_, f) in row.cells})
    known = all_tasks()  # zero-shot cells are not label-efficiency points
    tasks = sorted({t for row in rows for (t, _) in row.cells if getattr(known.get(t), "family", None) != "zeroshot"})
    lines = ["| Method | Pretraining images | " + " | ".join(f"mean {f}%" for f in fractions) + " |", "|" + "---|" * (2 + len(fractions))]
    for row in rows:
        cells = []
        for fraction in fractions:
            values = [row.cells[(t, fraction)].mean for t in tasks if (t, fraction) in row.cells]
            complete = len(values) == len(tasks)
            cells.append(f"{np.mean(values):.1f}" + ("" if complete else f" ({len(values)}/{len(tasks)} tasks)") if values else "–")
        lines.append(f"| {row.metadata.method} | {row.metadata.pretraining.label()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_suite(suite: str, submissions_root: Path, out: Path) -> list[Path]:
    """Write ``out/<suite>/*.md`` (+ plots); return the files written."""
    rows = measured_rows(suite, submissions_root)
    folder = out / suite
    folder.mkdir(parents=True, exist_ok=True)
    banner = (
        "> **SMOKE SUITE.** Synthetic demo images in the official layouts; these numbers show what a "
        "leaderboard looks like and are NOT comparable with published results.\n\n"
        if suite == "demo" else ""
    )
    legend = (
        "Cells: mean over seeds (%) with a 95% bootstrap interval over test images and seeds. "
        "**Bold**: best measured row of the column; †: statistically tied with it (paired bootstrap, 95%); "
        "▲/▼: difference to the same method's real-image row.\n"
    )
    written = []
    index = [f"# {suite} suite leaderboard\n", banner, "Generated by `run_benchmark.py leaderboard` from `submissions/`; do not edit.\n"]
    for family in FAMILY_ORDER:
        tasks = family_tasks(family)
        if not tasks:
            continue
        parts = [f"# {FAMILY_TITLES[family]} — {suite} suite\n", banner + legend, "## Measured\n"]
        parts.append(measured_table(rows, tasks) if rows else "_No submissions yet._")
        if suite == "paper":
            parts.append("\n\n## Reported by Liu et al. (not measured by this harness)\n")
            parts.append("Values as printed in Tables 1-3 of the paper (ResNet-50); `-` = printed as '-'.\n")
            parts.append(reported_table(family, tasks))
        path = folder / f"{family}.md"
        path.write_text("\n".join(parts).rstrip() + "\n")
        written.append(path)
        index.append(f"- [{FAMILY_TITLES[family]}]({family}.md)")
    index.append("\n## Label efficiency\n")
    index.append("Mean of the task metrics at each label fraction (measured rows):\n")
    index.append(summary_table(rows) if rows else "_No submissions yet._")
    for task in all_tasks().values():
        if task.family in FAMILY_ORDER and task.family != "zeroshot" and efficiency_plot(task, rows, folder / "plots" / f"{task.id}.png"):
            index.append(f"\n![{task.id}](plots/{task.id}.png)")
            written.append(folder / "plots" / f"{task.id}.png")
    (folder / "README.md").write_text("\n".join(index).rstrip() + "\n")
    written.append(folder / "README.md")
    return written


def render_all(submissions_root: Path, out: Path = LEADERBOARDS, suites=("paper", "demo")) -> list[Path]:
    written = []
    for suite in suites:
        written += render_suite(suite, submissions_root, out)
    return written
