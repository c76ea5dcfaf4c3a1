"""Step 2, ``sample``: one entity set per synthetic report, balanced against the long tail, with
the entity usage-ratio cap; and the synthetic ids of each future pair.

Rule (our choice; the study publishes none of its values): the pool of a category is every entity
of the entity table found in at least ``min_reports`` real reports. Sets are drawn one after
another from ``numpy.random.default_rng(seed)``; for set ``i`` and each category in the order
Abnormality, Non-Abnormality, Disease, Non-Disease, Anatomy, a count ``k`` is drawn uniformly
from the category's range (default :data:`DEFAULT_RANGES`), then ``k`` distinct entities are
drawn among the ELIGIBLE ones: those used by fewer than ``cap = max(1, floor(usage_ratio *
count))`` earlier sets, and not already in the set under the opposite polarity (an entity is
never both present and negated in one report). ``--weighting balanced`` (default) draws eligible
entities with equal probability, ``frequency`` in proportion to their real report counts (the
long tail; for ablations). When fewer than ``k`` are eligible, all of them are taken and the
shortfall is counted (``short_draws``; a category whose pool is empty, e.g. Non-Disease on
reports that never rule a disease out, is listed under ``empty_pools`` instead). So no entity
appears in more than ``usage_ratio`` of the reports, and the same table, settings and seed give
the same sets.

Ids (our choice): set ``i`` becomes subject ``p{SUBJECT_BASE + i}``, study ``s{STUDY_BASE + i}``
(outside MIMIC-CXR's ranges p10-p19 and s50-s59, so a mixed root never collides), one frontal
(PA) image whose dicom_id is a sha256 of ``(seed, i)`` in MIMIC's 5 x 8 hex format, and split
``validate`` for the ``valid_fraction`` of the sets with the lowest hash rank, ``train`` for the rest.

Output (``<work>/samples/``): ``samples.jsonl`` (one set per line: index, sample_id, ids, split,
entities per category), ``frequencies.csv`` (each pool entity's real share of reports and its
share of the sampled sets), ``before.png`` (real frequencies) and ``after.png`` (sampled), and
``manifest.json`` (settings, cap, shortfalls, balance before/after: the largest share and the
normalised entropy of each category's mentions).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write, atomic_write_text
from benchmark.errors import BenchmarkError, ConfigError

from .entities import folder as entities_folder
from .entities import read_table
from .lexicon import CATEGORIES, NEGATED, TITLES
from .steps import check_settings, file_sha256, log, provenance, read_manifest, write_manifest

STEP = "samples"
SAMPLES = "samples.jsonl"
DEFAULT_RANGES = {
    "abnormality": (0, 3),
    "non-abnormality": (0, 2),
    "disease": (0, 1),
    "non-disease": (0, 1),
    "anatomy": (1, 3),
}
DEFAULT_USAGE_RATIO = 0.1
SUBJECT_BASE = 90_000_000
STUDY_BASE = 90_000_000
WEIGHTINGS = ("balanced", "frequency")
OPPOSITE = {**NEGATED, **{v: k for k, v in NEGATED.items()}}


@dataclass
class SamplingConfig:
    work: Path
    count: int
    seed: int = 0
    usage_ratio: float = DEFAULT_USAGE_RATIO
    ranges: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RANGES))
    weighting: str = "balanced"
    min_reports: int = 1
    valid_fraction: float = 0.05
    overwrite: bool = False

    def settings(self) -> dict:
        return {
            "count": int(self.count),
            "seed": int(self.seed),
            "usage_ratio": float(self.usage_ratio),
            "cap": usage_cap(self.usage_ratio, self.count),
            "ranges": {c: list(self.ranges[c]) for c in CATEGORIES},
            "weighting": self.weighting,
            "min_reports": int(self.min_reports),
            "valid_fraction": float(self.valid_fraction),
            "subject_base": SUBJECT_BASE,
            "study_base": STUDY_BASE,
        }


def folder(work: Path) -> Path:
    return Path(work) / STEP


def parse_ranges(text: str | None) -> dict[str, tuple[int, int]]:
    """``"abnormality=0-3,anatomy=1-2"`` over the defaults."""
    ranges = dict(DEFAULT_RANGES)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, _, span = item.partition("=")
        name = name.strip().lower()
        try:
            lo, hi = (int(v) for v in span.split("-"))
        except ValueError:
            raise ConfigError(f"--entities-per-report: expected CATEGORY=LO-HI, got {item!r}") from None
        if name not in DEFAULT_RANGES or not 0 <= lo <= hi:
            raise ConfigError(
                f"--entities-per-report {item!r}: the category must be one of {', '.join(CATEGORIES)} and 0 <= LO <= HI"
            )
        ranges[name] = (lo, hi)
    return ranges


def usage_cap(usage_ratio: float, count: int) -> int:
    return max(1, math.floor(float(usage_ratio) * int(count)))


def dicom_id(seed: int, index: int) -> str:
    digest = hashlib.sha256(f"syncxr-dicom:{int(seed)}:{int(index)}".encode()).hexdigest()
    return "-".join(digest[k : k + 8] for k in range(0, 40, 8))


def splits(seed: int, count: int, valid_fraction: float) -> list[str]:
    rank = sorted(range(count), key=lambda i: hashlib.sha256(f"syncxr-split:{seed}:{i}".encode()).hexdigest())
    valid = set(rank[: int(round(valid_fraction * count))])
    return ["validate" if i in valid else "train" for i in range(count)]


def draw_sets(pools: dict[str, pd.DataFrame], cfg: SamplingConfig) -> tuple[list[dict], dict[str, int]]:
    """The entity sets (see the module docstring) and the shortfall per category."""
    rng = np.random.default_rng(int(cfg.seed))
    cap = usage_cap(cfg.usage_ratio, cfg.count)
    usage = {c: dict.fromkeys(pools[c]["entity"], 0) for c in CATEGORIES}
    short = dict.fromkeys(CATEGORIES, 0)
    sets = []
    for _ in range(int(cfg.count)):
        chosen: dict[str, list[str]] = {}
        for category in CATEGORIES:
            lo, hi = cfg.ranges[category]
            k = int(rng.integers(lo, hi + 1))
            blocked = set(chosen.get(OPPOSITE.get(category, ""), []))
            pool = pools[category]
            eligible = [
                (name, reports)
                for name, reports in zip(pool["entity"], pool["reports"])
                if usage[category][name] < cap and name not in blocked
            ]
            take = min(k, len(eligible))
            if len(pool):
                short[category] += k - take
            picked: list[str] = []
            if take:
                weights = np.array([1.0 if cfg.weighting == "balanced" else float(r) for _, r in eligible])
                index = rng.choice(len(eligible), size=take, replace=False, p=weights / weights.sum())
                picked = sorted(eligible[int(j)][0] for j in index)
            for name in picked:
                usage[category][name] += 1
            chosen[category] = picked
        sets.append(chosen)
    return sets, short


def balance(counts: np.ndarray, total: int) -> dict:
    """Largest share of ``total`` and the normalised entropy (1 = every entity equally often) of
    a category's counts."""
    counts = np.asarray(counts, dtype=float)
    if counts.sum() <= 0 or len(counts) < 2:
        return {"max_share": float(counts.max() / total) if len(counts) and total else 0.0, "entropy": None}
    p = counts[counts > 0] / counts.sum()
    return {
        "max_share": round(float(counts.max() / total), 6),
        "entropy": round(float(-(p * np.log(p)).sum()) / math.log(len(counts)), 6),
    }


def frequency_plot(frame: pd.DataFrame, column: str, title: str, path: Path, cap_share: float | None = None) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(CATEGORIES), 1, figsize=(12, 2.6 * len(CATEGORIES)), dpi=90)
    top = max(
        float(frame[column].max()) if len(frame) else 0.0, float(frame["real_share"].max()) if len(frame) else 0.0
    )
    for axis, category in zip(axes, CATEGORIES):
        part = frame[frame["category"] == category]
        axis.bar(range(len(part)), part[column], color="#4c72b0" if column == "sampled_share" else "#8c8c8c")
        axis.set_xticks(range(len(part)), part["entity"], rotation=60, ha="right", fontsize=7)
        axis.set_ylim(0, max(top * 1.05, 0.01))
        axis.set_ylabel("share of reports", fontsize=8)
        axis.set_title(f"{TITLES[category]} ({len(part)} {'entity' if len(part) == 1 else 'entities'})", fontsize=9)
        if cap_share is not None:
            axis.axhline(cap_share, color="#c44e52", linestyle="--", linewidth=1, label="usage-ratio cap")
            axis.legend(fontsize=7, loc="upper right")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def run(cfg: SamplingConfig) -> dict:
    if cfg.count < 1:
        raise ConfigError(f"--count must be >= 1, got {cfg.count}")
    if not 0 < cfg.usage_ratio <= 1:
        raise ConfigError(f"--usage-ratio must be in (0, 1], got {cfg.usage_ratio}")
    if cfg.weighting not in WEIGHTINGS:
        raise ConfigError(f"--weighting must be one of {', '.join(WEIGHTINGS)}, got {cfg.weighting!r}")
    if not 0 <= cfg.valid_fraction < 1:
        raise ConfigError(f"--valid-fraction must be in [0, 1), got {cfg.valid_fraction}")
    source = read_manifest(entities_folder(cfg.work), "entities", "`python -m recipes.syncxr entities`")
    table = read_table(cfg.work)
    settings = {**cfg.settings(), "entities_table_sha256": source["table_sha256"]}
    out = folder(cfg.work)
    check_settings(out, settings, STEP, cfg.overwrite)
    pools = {
        c: table[(table["category"] == c) & (table["reports"] >= cfg.min_reports)].reset_index(drop=True)
        for c in CATEGORIES
    }
    if all(pools[c].empty for c in CATEGORIES):
        raise BenchmarkError(
            f"no entity of {entities_folder(cfg.work) / 'entities.csv'} is found in >= {cfg.min_reports} reports; "
            "check the data root and the lexicon (or lower --min-reports)"
        )
    sets, short = draw_sets(pools, cfg)
    split = splits(cfg.seed, cfg.count, cfg.valid_fraction)
    records = [
        {
            "index": i,
            "sample_id": f"syncxr-{i:07d}",
            "subject_id": SUBJECT_BASE + i,
            "study_id": STUDY_BASE + i,
            "dicom_id": dicom_id(cfg.seed, i),
            "split": split[i],
            "entities": chosen,
        }
        for i, chosen in enumerate(sets)
    ]
    atomic_write_text(out / SAMPLES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    rows = []
    for category in CATEGORIES:
        used = {}
        for chosen in sets:
            for name in chosen[category]:
                used[name] = used.get(name, 0) + 1
        for name, reports, share in zip(
            pools[category]["entity"], pools[category]["reports"], pools[category]["share"]
        ):
            rows.append((category, name, int(reports), float(share), used.get(name, 0), used.get(name, 0) / cfg.count))
    frequencies = pd.DataFrame(
        rows, columns=["category", "entity", "real_reports", "real_share", "sampled_sets", "sampled_share"]
    )
    atomic_write_text(
        out / "frequencies.csv", frequencies.to_csv(index=False, lineterminator="\n", float_format="%.6f")
    )
    cap = usage_cap(cfg.usage_ratio, cfg.count)
    frequency_plot(frequencies, "real_share", "Before: entity frequencies in the real reports", out / "before.png")
    frequency_plot(
        frequencies,
        "sampled_share",
        f"After: entity frequencies in {cfg.count} sampled sets ({cfg.weighting}, usage ratio {cfg.usage_ratio})",
        out / "after.png",
        cap_share=cap / cfg.count,
    )
    n_real = int(source["reports"])
    manifest = {
        "step": STEP,
        "settings": settings,
        "entities_table_version": source["table_version"],
        "sets": len(records),
        "splits": {s: split.count(s) for s in ("train", "validate")},
        "pool_sizes": {c: len(pools[c]) for c in CATEGORIES},
        "short_draws": short,
        "empty_pools": [c for c in CATEGORIES if pools[c].empty],
        "entities_per_set": {c: round(sum(len(s[c]) for s in sets) / len(sets), 4) for c in CATEGORIES},
        "balance": {
            c: {
                "before": balance(pools[c]["reports"].to_numpy(), n_real),
                "after": balance(frequencies.loc[frequencies["category"] == c, "sampled_sets"].to_numpy(), cfg.count),
            }
            for c in CATEGORIES
        },
        "samples": SAMPLES,
        "samples_sha256": file_sha256(out / SAMPLES),
        "plots": ["before.png", "after.png"],
        **provenance(),
    }
    write_manifest(out, manifest)
    empty = [c for c in CATEGORIES if pools[c].empty]
    if empty:
        log(f"sample: no entity of {', '.join(empty)} is found in the real reports: those categories stay empty")
    if any(short.values()):
        log(
            "sample: WARNING the usage-ratio cap left draws short (fewer entities than drawn, mostly in the last "
            f"sets): {short}. Raise --usage-ratio or lower --entities-per-report when that is not intended."
        )
    log(
        f"sample: {len(records)} entity sets (cap {cap} sets per entity = usage ratio {cfg.usage_ratio}; "
        f"{cfg.weighting}); shortfalls {short}; -> {out / SAMPLES}, before.png, after.png"
    )
    return manifest


def read_samples(work: Path) -> list[dict]:
    path = folder(work) / SAMPLES
    if not path.is_file():
        raise BenchmarkError(f"{path}: no entity sets; run `python -m recipes.syncxr sample` first")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
