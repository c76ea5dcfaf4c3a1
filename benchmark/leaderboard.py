"""Leaderboards: markdown generated from ``submissions/`` and the reported numbers.

Never edit ``leaderboards/`` by hand: ``run_benchmark.py leaderboard`` rewrites it, and a
test fails when the committed files differ from what the results produce.

Every measured number is RECOMPUTED from the units' saved per-image predictions
(:mod:`benchmark.scoring`); a result whose JSON value disagrees with its predictions keeps its
submission off the board, and the run says why. Per suite (``paper``; ``demo`` = the smoke
suite) and task family, the measured rows (one per submission; mean over seeds with a 95%
bootstrap interval over test images and seeds; best per column in bold; † = statistically
tied with the best by a paired bootstrap; ▲/▼ = difference to the same method's real-image
row) appear in up to two tables:

- **reference rule** (segmentation and detection): the metric as the reference code (MGCA)
  computes it, laid out like the paper's tables, so it can be read beside the REPORTED rows
  of Liu et al. (Tables 1-3 of "Utilizing Synthetic Data for Medical Vision-Language
  Pre-training"; a separate table, never mixed with measured rows). Segmentation adds the
  rows of two trivial heads ("Predict nothing", "Predict everything") on the same test set.
- **sound metrics** (every family): segmentation ranks on ``dice_positive`` with
  ``specificity`` beside it, detection on ``map`` over all test images.

Plus a label-efficiency plot per task and a one-number summary per method (sound metrics).

Protocol versions are never mixed: a result produced under another protocol version of its
family than the current one (:mod:`benchmark.protocol_versions`) is left out of every table
and listed, with its submission and units, in a note under the family's tables and on the
suite's index page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .protocol_versions import changes_since, current_version, is_current, result_version
from .registry import all_tasks
from .result_checks import checked_scores
from .results import Result
from .scoring import UnitScores, reference_key, sound_key
from .statistics import CellStats, cell_stats, tied_with_best
from .submissions import (
    SubmissionMetadata,
    list_submissions,
    load_metadata,
    results_dir,
    submission_results,
    validate_submission,
)

WHY_TWO_TABLES = (
    "Why two tables: the reference code's rules can be won by doing nothing. Under its Dice an image with "
    "an empty ground truth scores 1 when the prediction is empty, so on SIIM and RSNA, where most test images "
    "are negative, a head that predicts no pixel at all scores 77.9 and 77.5, above every published "
    "segmentation row; its detection mAP ignores every image without a ground-truth box or without a "
    "prediction. The first table keeps those rules so measured rows stand beside the published ones; the "
    "second ranks on rules that abstaining cannot win (Dice over images with a finding, with the share of "
    "negative images left empty beside it; mAP over all test images)."
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "paper_tables.csv"
LEADERBOARDS = ROOT / "leaderboards"
FAMILY_ORDER = ("classification", "segmentation", "detection", "zeroshot")
FAMILY_TITLES = {
    "classification": "Classification (linear probe)",
    "segmentation": "Segmentation (U-Net decoder, Dice)",
    "detection": "Detection (YOLOv3 head, mAP@[0.40:0.75])",
    "zeroshot": "Zero-shot (classification AUC, grounding Dice; no training)",
}
DATASET_TITLES = {
    "chexpert": "CheXpert",
    "rsna": "RSNA",
    "covidx": "COVIDx",
    "siim": "SIIM",
    "object_cxr": "Object-CXR",
}
REFERENCE_DATASET = {"objectcxr": "object_cxr"}  # paper_tables.csv name -> task dataset name
IMAGES_ORDER = {"none": 0, "imagenet": 1, "real": 2, "synthetic": 3, "mixed": 4}
GENERATOR_TITLES = {"sd": "SD 2.1", "roentgen": "RoentGen", "real": "real", "none": "none", "imagenet": "ImageNet"}
METHOD_TITLES = {
    "random": "Random init",
    "imagenet": "ImageNet init",
    "convirt": "ConVIRT",
    "gloria": "GLoRIA",
    "mgca": "MGCA",
}


@dataclass
class Cell:
    """One (task, fraction) of a submission: the per-seed scores, and statistics per metric."""

    task: object
    units: list[UnitScores]
    _stats: dict = field(default_factory=dict)

    def stats(self, key: str) -> CellStats:
        if key not in self._stats:
            self._stats[key] = cell_stats(self.units, key)
        return self._stats[key]

    @property
    def floors(self):
        return self.units[0].floors


@dataclass
class Row:
    metadata: SubmissionMetadata
    cells: dict[tuple[str, int], Cell]

    @property
    def images_key(self) -> tuple:
        p = self.metadata.pretraining
        return (
            not self.metadata.baseline,
            self.metadata.method_id,
            IMAGES_ORDER[p.images],
            p.generator or "",
            self.metadata.name,
        )


@dataclass
class TrivialRow:
    """A head that needs no encoder, shown for comparison only (never bold, never ranked)."""

    label: str
    values: dict[tuple[str, int], dict[str, float]]  # column -> {metric key: fraction}


DATASET_ORDER = ("chexpert", "rsna", "covidx", "siim", "object_cxr")  # as in the paper's tables


def column_title(task, fraction: int) -> str:
    """``CheXpert 10%``; zero-shot columns have no label fraction: ``RSNA grounding Dice``."""
    if task.family == "zeroshot":
        return (
            f"{DATASET_TITLES[task.dataset]} {getattr(task, 'mode', '')} "
            f"{task.metric.upper() if task.metric == 'auc' else task.metric.capitalize()}"
        ).replace("  ", " ")
    return f"{DATASET_TITLES[task.dataset]} {fraction}%"


def family_tasks(family: str) -> list:
    tasks = [t for t in all_tasks().values() if t.family == family]
    return sorted(tasks, key=lambda t: (DATASET_ORDER.index(t.dataset) if t.dataset in DATASET_ORDER else 99, t.id))


def submission_cells(folder: Path, suite: str, outdated: list[Result] | None = None) -> dict[tuple[str, int], Cell]:
    """Every (task, fraction) cell of a submission, recomputed from its predictions, from the
    results of the current protocol versions only; the others are appended to ``outdated``.
    Raises ValueError naming the file when a result cannot be recomputed or disagrees with it."""
    tasks = all_tasks()
    outdated = [] if outdated is None else outdated
    groups: dict[tuple[str, int], list] = {}
    for result, base in submission_results(folder, suite):
        if not is_current(result):
            outdated.append(result)
            continue
        groups.setdefault((result.unit.task, result.unit.fraction), []).append((result, base))
    cells = {}
    for key, members in sorted(groups.items()):
        task = tasks.get(key[0])
        if task is None:
            raise ValueError(f"{members[0][1] / key[0]}: unknown task {key[0]!r}")
        members.sort(key=lambda pair: pair[0].unit.seed)
        units = [checked_scores(task, result, base) for result, base in members]
        digests = {unit.targets_sha256 for unit in units}
        if len(digests) > 1:
            raise ValueError(
                f"{members[0][1] / key[0]}: the seeds of {key[0]} {key[1]}% were scored against different "
                "ground truth (targets in their predictions files differ): rewritten targets?"
            )
        cells[key] = Cell(task, units)
    return cells


def disagreeing_targets(rows: list[Row]) -> dict[str, str]:
    """Submissions whose ground truth for a task differs from what most submissions hold
    (every submission of a suite is tested on the same images with the same labels):
    {submission name: reason}. With no majority, every disagreeing submission is named."""
    from collections import Counter

    flagged: dict[str, str] = {}
    tasks = sorted({task for row in rows for (task, _) in row.cells})
    for task in tasks:
        digest_of = {}
        for row in rows:
            digests = {c.units[0].targets_sha256 for (t, _), c in row.cells.items() if t == task}
            if len(digests) > 1:  # its label fractions disagree on the one test set
                flagged.setdefault(
                    row.metadata.name,
                    f"its {task} label fractions were scored against different ground truth "
                    "(targets in the predictions files differ): rewritten targets?",
                )
            elif digests:
                digest_of[row.metadata.name] = digests.pop()
        counts = Counter(digest_of.values())
        if len(counts) < 2:
            continue
        top, top_count = counts.most_common(1)[0]
        unique_majority = list(counts.values()).count(top_count) == 1
        for name, digest in digest_of.items():
            if not unique_majority or digest != top:
                flagged.setdefault(
                    name,
                    f"its {task} ground truth (targets in the predictions files) differs from the other "
                    "submissions' on the same test set: rewritten targets?",
                )
    return flagged


def measured_rows(
    suite: str,
    root: Path,
    skipped: list[str] | None = None,
    require_complete: bool = True,
    outdated: dict[str, list[Result]] | None = None,
) -> list[Row]:
    """One row per submission with results on ``suite`` that validates
    (:func:`~benchmark.submissions.validate_submission`); the others are left out and
    described in ``skipped``. ``require_complete=False`` also shows partial submissions.
    Results of another protocol version than their family's current one do not make a
    submission invalid here: they are left out of its row and collected in ``outdated``
    (submission name -> results), for the note that lists them."""
    skipped = [] if skipped is None else skipped
    outdated = {} if outdated is None else outdated
    rows = []
    for folder in list_submissions(root):
        try:
            metadata = load_metadata(folder)
        except Exception as error:  # validate-submission lists the details
            skipped.append(
                f"{folder.name}: invalid submission.yaml ({type(error).__name__}); "
                f"run `run_benchmark.py validate-submission {folder}`"
            )
            continue
        if not (results_dir(folder, suite)).is_dir():
            continue
        problems = validate_submission(folder, (suite,), require_complete=require_complete, name_outdated=False)
        if problems:
            more = (
                f" (+{len(problems) - 3} more; run `run_benchmark.py validate-submission {folder}`)"
                if len(problems) > 3
                else ""
            )
            skipped.append(f"{folder.name}: " + "; ".join(problems[:3]) + more)
            continue
        left_out: list[Result] = []
        try:
            cells = submission_cells(folder, suite, left_out)
        except ValueError as error:
            skipped.append(f"{folder.name}: {error}")
            continue
        if left_out:
            outdated[folder.name] = left_out
        if cells:
            rows.append(Row(metadata, cells))
    flagged = disagreeing_targets(rows)
    skipped.extend(f"{name}: {reason}" for name, reason in sorted(flagged.items()))
    rows = [row for row in rows if row.metadata.name not in flagged]
    return sorted(rows, key=lambda row: row.images_key)


def outdated_groups(
    outdated: dict[str, list[Result]], family: str | None = None
) -> list[tuple[str, str, int, list[Result]]]:
    """(submission, family, protocol version, results) of the left-out results (of
    ``family`` only, when given), in a stable order."""
    groups: dict[tuple[str, str, int], list[Result]] = {}
    for name, results in outdated.items():
        for result in results:
            if family is None or result.family == family:
                groups.setdefault((name, result.family, result_version(result)), []).append(result)

    def order(key: tuple[str, str, int]) -> tuple:
        name, fam, version = key
        return name, FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else len(FAMILY_ORDER), fam, version

    return [
        (
            name,
            fam,
            version,
            sorted(groups[(name, fam, version)], key=lambda r: (r.unit.task, r.unit.fraction, r.unit.seed)),
        )
        for name, fam, version in sorted(groups, key=order)
    ]


def version_difference(family: str, version: int) -> str:
    """``protocol v1, current v2 (what changed)`` for a left-out result's version."""
    current = current_version(family)
    why = changes_since(family, version) if version < current else "newer than this harness"
    return f"{family} protocol v{version}, current v{current} ({why})"


def outdated_note(family: str, outdated: dict[str, list[Result]]) -> str:
    """The note under a family's tables that names every left-out result of ``family``
    (submission and units), or '' when there is none: never mixed, never dropped silently."""
    groups = outdated_groups(outdated, family)
    if not groups:
        return ""
    lines = [
        f"## Left out: results of another {family} protocol version\n",
        "Results of different protocol versions are never mixed (`benchmark/protocol_versions.py`): these units "
        "are in none of the tables above. Rerun them with the current harness to show them.\n",
    ]
    for name, _, version, results in groups:
        units = ", ".join(f"{r.unit.task} {r.unit.fraction}% seed {r.unit.seed}" for r in results)
        lines.append(
            f"- `{name}`: {len(results)} unit(s) produced under {version_difference(family, version)}: {units}"
        )
    return "\n".join(lines)


def outdated_summary(outdated: dict[str, list[Result]]) -> list[str]:
    """One line per submission, family and version of the left-out results, for the suite's
    index page and the ``leaderboard`` command's output."""
    return [
        f"{name}: {len(results)} {family} unit(s) left out of the tables, produced under "
        f"{version_difference(family, version)}; listed in {family}.md; rerun them"
        for name, family, version, results in outdated_groups(outdated)
    ]


def delta_marker(value: float, reference: float | None) -> str:
    if reference is None or np.isnan(reference):
        return ""
    diff = value - reference
    arrow = "▲" if diff > 0 else ("▼" if diff < 0 else "=")
    return f" {arrow}{abs(diff):.1f}"


def fmt(value: float) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.1f}"


def measured_table(
    rows: list[Row], tasks: list, key_of, trivial: list[TrivialRow] = (), beside: str | None = None
) -> str:
    """Measured rows ranked on the metric ``key_of(task)`` (bold and † computed in this table
    alone); ``beside``: a second metric printed after each cell (not ranked); ``trivial``:
    rows of trivial heads, shown in italics after the measured ones."""
    columns = [(t, f) for t in tasks for f in t.fractions]
    header = ["Method", "Pretraining images"] + [column_title(t, f) for t, f in columns] + ["Seeds"]
    best: dict = {}
    for task, fraction in columns:
        present = [
            row
            for row in rows
            if (task.id, fraction) in row.cells
            and not np.isnan(row.cells[(task.id, fraction)].stats(key_of(task)).mean)
        ]
        if present:
            best[(task.id, fraction)] = max(
                present, key=lambda row: row.cells[(task.id, fraction)].stats(key_of(task)).mean
            )
    real_rows = {row.metadata.method_id: row for row in rows if row.metadata.pretraining.images == "real"}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.metadata.method, row.metadata.pretraining.label()]
        reference = real_rows.get(row.metadata.method_id)
        seeds = set()
        for task, fraction in columns:
            cell = row.cells.get((task.id, fraction))
            if cell is None:
                cells.append("–")
                continue
            key = key_of(task)
            stats = cell.stats(key)
            seeds.add(stats.seeds)
            text = fmt(stats.mean)
            champion = best.get((task.id, fraction))
            if champion is row:
                text = f"**{text}**"
            elif champion is not None and tied_with_best(stats, champion.cells[(task.id, fraction)].stats(key)):
                text += "†"
            text += f" [{fmt(stats.low)}, {fmt(stats.high)}]"
            if reference is not None and reference is not row and (task.id, fraction) in reference.cells:
                text += delta_marker(stats.mean, reference.cells[(task.id, fraction)].stats(key).mean)
            if beside:
                text += f" · {beside[:4]} {fmt(cell.stats(beside).mean)}"
            cells.append(text)
        cells.append("–" if not seeds else str(min(seeds)) if len(seeds) == 1 else f"{min(seeds)}-{max(seeds)}")
        lines.append("| " + " | ".join(cells) + " |")
    for row in trivial:
        cells = [f"_{row.label}_", "no encoder"]
        for task, fraction in columns:
            values = row.values.get((task.id, fraction))
            if values is None:
                cells.append("–")
                continue
            text = f"_{fmt(100 * values[key_of(task)])}_"
            if beside:
                text += f" · {beside[:4]} {fmt(100 * values[beside])}"
            cells.append(text)
        cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trivial_rows(suite: str, rows: list[Row], tasks: list) -> list[TrivialRow]:
    """The predict-nothing / predict-everything rows of the segmentation tasks: on the paper
    suite from the real test manifests and label files (:mod:`benchmark.paper_floors`), on
    other suites from any measured unit's ground truth (every unit shares the test set)."""
    found: dict[tuple[str, int], dict] = {}
    for task in tasks:
        if task.family != "segmentation":
            continue
        floors = None
        if suite == "paper":
            from .paper_floors import paper_floors

            floors = paper_floors(task)
        else:
            for row in rows:
                cell = next((c for (t, _), c in sorted(row.cells.items()) if t == task.id and c.floors), None)
                if cell is not None:
                    floors = cell.floors
                    break
        if floors:
            for fraction in task.fractions:
                found[(task.id, fraction)] = floors
    if not found:
        return []
    return [
        TrivialRow(label, {column: floors[name] for column, floors in found.items()})
        for name, label in (("predict_nothing", "Predict nothing"), ("predict_everything", "Predict everything"))
    ]


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

    key = sound_key(task)
    series = [
        (row, [(f, row.cells[(task.id, f)].stats(key)) for f in task.fractions if (task.id, f) in row.cells])
        for row in rows
    ]
    series = [(row, points) for row, points in series if points]
    if not series:
        return False
    figure, axis = plt.subplots(figsize=(5, 3.4), dpi=100)
    for row, points in series:
        xs = [f for f, _ in points]
        ys = np.array([s.mean for _, s in points])
        low = ys - np.array([s.low for _, s in points])
        high = np.array([s.high for _, s in points]) - ys
        axis.errorbar(
            xs,
            ys,
            yerr=[low, high],
            marker="o",
            capsize=3,
            label=f"{row.metadata.method} ({row.metadata.pretraining.label()})",
        )
    axis.set_xscale("log")
    axis.set_xticks(list(task.fractions), [f"{f}%" for f in task.fractions])
    axis.set_xlabel("labelled training images")
    axis.set_ylabel(f"{key} (%)")
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
    lines = [
        "| Method | Pretraining images | " + " | ".join(f"mean {f}%" for f in fractions) + " |",
        "|" + "---|" * (2 + len(fractions)),
    ]
    for row in rows:
        cells = []
        for fraction in fractions:
            values = [
                row.cells[(t, fraction)].stats(sound_key(known[t])).mean for t in tasks if (t, fraction) in row.cells
            ]
            complete = len(values) == len(tasks)
            cells.append(
                f"{np.mean(values):.1f}" + ("" if complete else f" ({len(values)}/{len(tasks)} tasks)")
                if values
                else "–"
            )
        lines.append(f"| {row.metadata.method} | {row.metadata.pretraining.label()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


LEGEND = (
    "Cells: mean over seeds (%) with a 95% bootstrap interval over test images and seeds, recomputed from "
    "the saved per-image predictions. **Bold**: best measured row of the column in this table; †: not "
    "distinguishable from it (paired bootstrap, 95% interval of the difference contains 0; each † is its own "
    "comparison with the best row, uncorrected for the number of rows, so with many rows some † are luck); "
    "▲/▼: difference to the same method's real-image row; Seeds: how many seeds each cell averages."
)


def family_page(
    suite: str, family: str, tasks: list, rows: list[Row], banner: str, outdated: dict[str, list[Result]] | None = None
) -> str:
    """A family's page: its tables, then the note naming results left out for their protocol
    version (``outdated``, submission name -> results)."""
    parts = [f"# {FAMILY_TITLES[family]} — {suite} suite\n", banner + LEGEND + "\n"]
    none = "_No submissions yet._"
    if family in ("segmentation", "detection"):
        parts.append(WHY_TWO_TABLES + "\n")
        trivial = trivial_rows(suite, rows, tasks)
        rule = {
            "segmentation": (
                "per-image Dice; an image with an empty ground truth scores 1 if the prediction is empty, else 0"
            ),
            "detection": "mAP over only the images that have a ground-truth box and at least one surviving prediction",
        }[family]
        parts.append(f"## Reference rule (MGCA's {rule}; comparable with the reported rows)\n")
        if trivial:
            parts.append("Italic rows: heads that need no encoder, scored on the same test images (never ranked).\n")
        parts.append(measured_table(rows, tasks, reference_key, trivial) if rows or trivial else none)
        if suite == "paper":
            parts.append("\n\n### Reported by Liu et al. (not measured by this harness)\n")
            parts.append(
                "Values as printed in Tables 1-3 of the paper (ResNet-50), under the reference rule; "
                "`-` = printed as '-'.\n"
            )
            parts.append(reported_table(family, tasks))
        sound = {
            "segmentation": (
                "ranked by Dice over the test images with a finding (`dice_positive`); "
                "`spec` = share of negative test images predicted empty"
            ),
            "detection": (
                "ranked by mAP over ALL test images (a box on a negative image is a false positive; "
                "a missed image counts)"
            ),
        }[family]
        parts.append(f"\n\n## Sound metrics ({sound})\n")
        beside = "specificity" if family == "segmentation" else None
        parts.append(measured_table(rows, tasks, sound_key, trivial, beside=beside) if rows or trivial else none)
    else:
        parts.append("## Measured\n")
        parts.append(measured_table(rows, tasks, sound_key) if rows else none)
        if suite == "paper":
            parts.append("\n\n## Reported by Liu et al. (not measured by this harness)\n")
            parts.append("Values as printed in Tables 1-3 of the paper (ResNet-50); `-` = printed as '-'.\n")
            parts.append(reported_table(family, tasks))
    note = outdated_note(family, outdated or {})
    if note:
        parts.append("\n\n" + note)
    return "\n".join(parts).rstrip() + "\n"


def render_suite(
    suite: str, submissions_root: Path, out: Path, skipped: list[str] | None = None, require_complete: bool = True
) -> list[Path]:
    """Write ``out/<suite>/*.md`` (+ plots); return the files written. Submissions that
    cannot be shown, and results left out for their protocol version, are listed on the
    suite's index page and appended to ``skipped``."""
    skipped = [] if skipped is None else skipped
    own_skipped: list[str] = []
    outdated: dict[str, list[Result]] = {}
    rows = measured_rows(suite, submissions_root, own_skipped, require_complete, outdated)
    own_skipped += outdated_summary(outdated)
    skipped.extend(f"{suite}: {line}" for line in own_skipped)
    folder = out / suite
    folder.mkdir(parents=True, exist_ok=True)
    banner = (
        "> **SMOKE SUITE.** Synthetic demo images in the official layouts; these numbers show what a "
        "leaderboard looks like and are NOT comparable with published results.\n\n"
        if suite == "demo"
        else ""
    )
    written = []
    index = [
        f"# {suite} suite leaderboard\n",
        banner,
        "Generated by `run_benchmark.py leaderboard` from `submissions/`; do not edit.\n",
        WHY_TWO_TABLES + "\n",
    ]
    for family in FAMILY_ORDER:
        tasks = family_tasks(family)
        if not tasks:
            continue
        path = folder / f"{family}.md"
        path.write_text(family_page(suite, family, tasks, rows, banner, outdated))
        written.append(path)
        index.append(f"- [{FAMILY_TITLES[family]}]({family}.md)")
    if own_skipped:
        index.append("\n## Not shown\n")
        index.extend(f"- {line}" for line in own_skipped)
    index.append("\n## Label efficiency\n")
    index.append(
        "Mean of the tasks' sound metrics (segmentation `dice_positive`, detection `map`) "
        "at each label fraction (measured rows):\n"
    )
    index.append(summary_table(rows) if rows else "_No submissions yet._")
    for task in all_tasks().values():
        if (
            task.family in FAMILY_ORDER
            and task.family != "zeroshot"
            and efficiency_plot(task, rows, folder / "plots" / f"{task.id}.png")
        ):
            index.append(f"\n![{task.id}](plots/{task.id}.png)")
            written.append(folder / "plots" / f"{task.id}.png")
    (folder / "README.md").write_text("\n".join(index).rstrip() + "\n")
    written.append(folder / "README.md")
    return written


def render_all(
    submissions_root: Path, out: Path = LEADERBOARDS, suites=("paper", "demo"), skipped: list[str] | None = None
) -> list[Path]:
    """Render every suite into a staging copy of ``out`` and swap it in only when everything
    rendered: a failure part-way leaves ``out`` as it was (all files or none). Returns the
    files written, under ``out``."""
    import os
    import shutil

    out = Path(out)
    stage = out.with_name(f".{out.name}.staging-{os.getpid()}")
    previous = out.with_name(f".{out.name}.previous-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        if out.is_dir():
            shutil.copytree(out, stage)
        for suite in suites:
            shutil.rmtree(stage / suite, ignore_errors=True)  # files a suite no longer produces go
        written = []
        for suite in suites:
            written += render_suite(suite, submissions_root, stage, skipped)
        top = stage / "README.md"
        top.write_text(
            "# Leaderboards\n\nGenerated from `submissions/` and the reported numbers by "
            "`run_benchmark.py leaderboard`; "
            "never edited by hand.\n\n"
            + "\n".join(f"- [{suite} suite]({suite}/README.md)" for suite in suites)
            + "\n\n"
            + WHY_TWO_TABLES
            + "\n"
        )
        written.append(top)
        if out.exists():
            os.replace(out, previous)
        os.replace(stage, out)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / path.relative_to(stage) for path in written]
