"""Step 5, ``build``: the SynCXR data root, a drop-in MIMIC-CXR(-JPG) layout of the KEPT synthetic
pairs, which the pretraining recipe reads with no change (``--data-root OUT --image-source real``).

    OUT/mimic-cxr-jpg/2.0.0/files/p90/p900000NN/s900000NN/<dicom_id>.jpg   (the curated images)
    OUT/mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-{metadata,split,chexpert}.csv.gz
    OUT/mimic-cxr/2.0.0/files/p90/p900000NN/s900000NN.txt                  (the synthetic reports)
    OUT/syncxr_pairs.csv       one row per pair: kind (synthetic / real), ids, split, files, p_yes, fallbacks
    OUT/syncxr_discarded.csv   every discarded image with its reason
    OUT/SYNCXR.json            settings, counts, pair set, and each step's settings and versions (written last)

Synthetic images are hard links to ``<work>/images`` (a copy across file systems; ``--link copy``
or ``symlink`` to choose). Mixed mode (``--mix-real ROOT --synthetic-ratio R``) also holds real
pairs of ROOT's pretraining pair set (``recipes.mimic.pair_set``), real images and reports as
symbolic links (``--real-link``): ``round(R * N)`` synthetic and ``N - round(R * N)`` real
pairs, with ``N = --mix-total`` or, by default, the largest total both pools allow; each pool is
drawn by a sha256 rank of its ids (``--mix-seed``), so the same inputs give the same root. The
synthetic ids (p90..., s90...) never collide with MIMIC-CXR's (checked).

Resumable: files already in place are kept, every file is written atomically, and
``SYNCXR.json`` is written last after ``pair_set(OUT)`` has been checked to hold exactly the
planned pairs. A root built with other settings is refused unless ``--overwrite`` (which first
removes the root's image and report trees).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.errors import BenchmarkError, ConfigError
from recipes.mimic import MimicLayout
from recipes.mimic.pair_set import describe, pair_set, pair_set_summary

from .curation import folder as curation_folder
from .curation import images_table, read_curation
from .entities import folder as entities_folder
from .images import folder as images_folder
from .images import study_rows
from .layout import (
    chexpert_frame,
    image_relpath,
    metadata_frame,
    place_file,
    report_relpath,
    report_text,
    split_frame,
    write_gz_csv,
    write_if_changed,
)
from .lexicon import load_lexicon
from .reports import folder as reports_folder
from .sampling import folder as samples_folder
from .steps import log, progress_bar, provenance, read_manifest, settings_hash

SUMMARY = "SYNCXR.json"
MARKER = ".syncxr-build"
PAIRS = "syncxr_pairs.csv"
DISCARDED = "syncxr_discarded.csv"
LINK_MODES = ("hardlink", "copy", "symlink")


@dataclass
class BuildConfig:
    work: Path
    output: Path
    mix_real: Path | None = None
    synthetic_ratio: float | None = None
    mix_total: int | None = None
    mix_seed: int = 0
    link: str = "hardlink"
    real_link: str = "symlink"
    lexicon: str | None = None
    overwrite: bool = False
    progress: bool = True


def rank(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mix_counts(n_synthetic: int, n_real: int, ratio: float, total: int | None) -> tuple[int, int]:
    """(synthetic, real) pair counts of a mixed root (see the module docstring)."""
    if total is None:
        limits = []
        if ratio < 1:
            limits.append(n_real / (1 - ratio))
        if ratio > 0:
            limits.append(n_synthetic / ratio)
        total = math.floor(min(limits) + 1e-9)
    n_syn = int(round(ratio * total))
    n_real_used = int(total) - n_syn
    if n_syn > n_synthetic or n_real_used > n_real:
        raise ConfigError(
            f"a mixed root of {total} pairs at synthetic ratio {ratio} needs {n_syn} synthetic and {n_real_used} real "
            f"pairs; there are {n_synthetic} kept synthetic and {n_real} real pairs (lower --mix-total)"
        )
    return n_syn, n_real_used


def step_versions(work: Path) -> dict:
    """What the root records of each earlier step (its settings hash and versions)."""

    def manifest(path: Path) -> dict:
        return json.loads((path / "manifest.json").read_text(encoding="utf-8"))

    entities = manifest(entities_folder(work))
    samples = manifest(samples_folder(work))
    reports = manifest(reports_folder(work))
    images = manifest(images_folder(work))
    curation = manifest(curation_folder(work))
    return {
        "entities": {
            "table_version": entities["table_version"],
            "lexicon_version": entities["settings"]["lexicon_version"],
            "reports": entities["reports"],
            "method": entities["settings"]["method"],
        },
        "samples": {
            "settings": samples["settings"],
            "samples_sha256": samples["samples_sha256"],
            "short_draws": samples["short_draws"],
            "balance": samples["balance"],
        },
        "reports": {
            "settings_sha256": reports["settings_sha256"],
            "generator": reports["settings"]["generator"],
            "max_attempts": reports["settings"]["max_attempts"],
            "seed": reports["settings"]["seed"],
            "attempts": reports["attempts"],
            "fallback": reports["fallback"],
            "table_sha256": reports["table_sha256"],
        },
        "images": {
            "settings_sha256": images["settings_sha256"],
            "prompt_section": images["prompt_section"],
            "synthesis": images["synthesis"],
        },
        "curation": {
            "settings_sha256": curation["settings_sha256"],
            "judge": curation["settings"]["judge"],
            "question": curation["settings"]["question"],
            "rule": curation["settings"]["rule"],
            "threshold": curation["settings"]["threshold"],
            "kept": curation["kept"],
            "discarded": curation["discarded"],
            "table_sha256": curation["table_sha256"],
        },
    }


def prepare_output(output: Path, key: str, overwrite: bool) -> None:
    """Claim ``output`` for this build (see the module docstring)."""
    output.mkdir(parents=True, exist_ok=True)
    marker = output / MARKER
    if marker.is_file():
        previous = marker.read_text().strip()
        if previous == key:
            return
        if not overwrite:
            raise ConfigError(
                f"{output} holds a SynCXR root built with other settings; use another --output, or --overwrite to "
                "rebuild it (its image and report trees are removed first)"
            )
        for tree in (MimicLayout(output).jpg, MimicLayout(output).reports):
            shutil.rmtree(tree, ignore_errors=True)
        (output / SUMMARY).unlink(missing_ok=True)
    elif any(output.iterdir()):
        raise ConfigError(f"{output} is not empty and is not a SynCXR root: pass a new or empty --output folder")
    atomic_write_text(marker, key + "\n")


def run(cfg: BuildConfig) -> dict:
    if cfg.link not in LINK_MODES or cfg.real_link not in LINK_MODES:
        raise ConfigError(f"--link and --real-link must be one of {', '.join(LINK_MODES)}")
    if (cfg.mix_real is None) != (cfg.synthetic_ratio is None):
        raise ConfigError("a mixed root needs both --mix-real ROOT and --synthetic-ratio R")
    if cfg.synthetic_ratio is not None and not 0 <= cfg.synthetic_ratio <= 1:
        raise ConfigError(f"--synthetic-ratio must be in [0, 1], got {cfg.synthetic_ratio}")
    work, output = Path(cfg.work), Path(cfg.output)
    lexicon = load_lexicon(cfg.lexicon)
    rows = {r["index"]: r for r in study_rows(work)}
    images = images_table(work).set_index("index")
    curation = read_curation(work)
    kept = curation[curation["keep"]].sort_values("index")
    synthetic = [
        {**rows[int(i)], "image": images.loc[int(i), "path"], "sha256": images.loc[int(i), "sha256"], "p_yes": p}
        for i, p in zip(kept["index"], kept["p_yes"])
    ]
    if not synthetic:
        raise BenchmarkError(
            f"the curation step kept none of the {len(curation)} images ({curation_folder(work) / 'curation.csv'} "
            "lists the reasons): nothing to build. Check the images, or the --mllm model and --keep-threshold"
        )
    height, width = int(images["height"].iloc[0]), int(images["width"].iloc[0])
    real = pd.DataFrame()
    if cfg.mix_real is not None:
        if Path(cfg.mix_real).resolve() == output.resolve():
            raise ConfigError("--output must differ from --mix-real")
        pool = pair_set(cfg.mix_real)
        n_syn, n_real = mix_counts(len(synthetic), len(pool), float(cfg.synthetic_ratio), cfg.mix_total)
        synthetic = sorted(synthetic, key=lambda r: rank(f"syncxr-mix:{cfg.mix_seed}:{r['sample_id']}"))[:n_syn]
        synthetic = sorted(synthetic, key=lambda r: r["index"])
        order = sorted(pool.index, key=lambda k: rank(f"syncxr-mix:{cfg.mix_seed}:{pool.loc[k, 'dicom_id']}"))
        real = pool.loc[sorted(order[:n_real])].reset_index(drop=True)
        clash = set(real["subject_id"].astype(int)) & {int(r["subject_id"]) for r in synthetic}
        clash |= set(real["study_id"].astype(int)) & {int(r["study_id"]) for r in synthetic}
        if clash:
            raise ConfigError(f"synthetic and real ids collide ({sorted(clash)[:5]}); the real root uses p90/s90 ids")
    settings = {
        "mode": "mixed" if cfg.mix_real is not None else "synthetic",
        "steps": {
            "reports": read_manifest(reports_folder(work), "reports", "")["table_sha256"],
            "curation": read_manifest(curation_folder(work), "curate", "")["table_sha256"],
        },
        "mix_real": str(Path(cfg.mix_real).resolve()) if cfg.mix_real is not None else None,
        "synthetic_ratio": cfg.synthetic_ratio,
        "mix_total": cfg.mix_total,
        "mix_seed": cfg.mix_seed if cfg.mix_real is not None else None,
        "link": cfg.link,
        "real_link": cfg.real_link if cfg.mix_real is not None else None,
    }
    key = settings_hash(settings)
    prepare_output(output, key, cfg.overwrite)
    layout = MimicLayout(output)
    bar = progress_bar(len(synthetic) + len(real), "build", cfg.progress, unit="pair", every=30)
    pairs = []
    for row in synthetic:
        image = image_relpath(row["subject_id"], row["study_id"], row["dicom_id"])
        report = report_relpath(row["subject_id"], row["study_id"])
        place_file(images_folder(work) / row["image"], layout.jpg / image, cfg.link)
        write_if_changed(layout.reports / report, report_text(row["sample_id"], row["findings"], row["impression"]))
        pairs.append(
            {
                "kind": "synthetic",
                "dicom_id": row["dicom_id"],
                "subject_id": int(row["subject_id"]),
                "study_id": int(row["study_id"]),
                "split": row["split"],
                "sample_id": row["sample_id"],
                "image": f"mimic-cxr-jpg/2.0.0/{image}",
                "report": f"mimic-cxr/2.0.0/{report}",
                "source_image": str(images_folder(work) / row["image"]),
                "sha256": row["sha256"],
                "p_yes": row["p_yes"],
                "findings_fallback": row["findings_fallback"],
                "impression_fallback": row["impression_fallback"],
            }
        )
        bar.update(1)
    for row in real.itertuples(index=False):
        image = image_relpath(row.subject_id, row.study_id, row.dicom_id)
        report = report_relpath(row.subject_id, row.study_id)
        place_file(Path(row.image_path), layout.jpg / image, cfg.real_link)
        place_file(Path(row.report_path), layout.reports / report, cfg.real_link)
        pairs.append(
            {
                "kind": "real",
                "dicom_id": row.dicom_id,
                "subject_id": int(row.subject_id),
                "study_id": int(row.study_id),
                "split": row.split,
                "sample_id": "",
                "image": f"mimic-cxr-jpg/2.0.0/{image}",
                "report": f"mimic-cxr/2.0.0/{report}",
                "source_image": str(row.image_path),
                "sha256": "",
                "p_yes": None,
                "findings_fallback": "",
                "impression_fallback": "",
            }
        )
        bar.update(1)
    bar.close()

    frames = {
        "metadata": [metadata_frame(synthetic, height, width)],
        "split": [split_frame(synthetic)],
        "chexpert": [chexpert_frame(synthetic, lexicon)],
    }
    if len(real):
        real_jpg = MimicLayout(Path(cfg.mix_real)).jpg
        ids, studies = set(real["dicom_id"]), set(zip(real["subject_id"].astype(int), real["study_id"].astype(int)))
        for name in ("metadata", "split"):
            table = pd.read_csv(real_jpg / f"mimic-cxr-2.0.0-{name}.csv.gz", dtype={"dicom_id": str})
            frames[name].append(table[table["dicom_id"].isin(ids)])
        chexpert_path = real_jpg / "mimic-cxr-2.0.0-chexpert.csv.gz"
        if chexpert_path.is_file():
            table = pd.read_csv(chexpert_path)
            keep = [(s, t) in studies for s, t in zip(table["subject_id"], table["study_id"])]
            frames["chexpert"].append(table[keep])
    for name, parts in frames.items():
        table = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
        by = ["subject_id", "study_id"] + (["dicom_id"] if "dicom_id" in table.columns else [])
        table = table.sort_values(by, kind="mergesort").reset_index(drop=True)
        write_gz_csv(table, layout.jpg / f"mimic-cxr-2.0.0-{name}.csv.gz")
    pair_table = pd.DataFrame(pairs).sort_values(["subject_id", "study_id", "dicom_id"]).reset_index(drop=True)
    atomic_write_text(output / PAIRS, pair_table.to_csv(index=False, lineterminator="\n"))
    discarded = curation[~curation["keep"]][["index", "sample_id", "dicom_id", "path", "p_yes", "reason"]]
    atomic_write_text(output / DISCARDED, discarded.to_csv(index=False, lineterminator="\n"))

    check = pair_set(output)
    expected, found = set(pair_table["dicom_id"]), set(check["dicom_id"])
    if expected != found:
        raise BenchmarkError(
            f"{output}: the pretraining pair set holds {len(found)} pairs, not the {len(expected)} built (missing "
            f"{sorted(expected - found)[:3]}, extra {sorted(found - expected)[:3]}); remove the folder and rebuild"
        )
    summary_pairs = pair_set_summary(check)
    summary = {
        "schema_version": 1,
        "recipe": "recipes.syncxr",
        "settings": settings,
        "settings_sha256": key,
        "pairs": {
            "synthetic": len(synthetic),
            "real": len(real),
            "total": len(pair_table),
            "discarded_synthetic": len(discarded),
            "by_split": {s: int(n) for s, n in pair_table["split"].value_counts().sort_index().items()},
        },
        "pair_set": summary_pairs,
        "image_size": [height, width],
        "read_with": f"python -m recipes.pretraining --data-root {output} --image-source real ...",
        "steps": step_versions(work),
        **provenance(),
    }
    atomic_write_text(output / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
    log(
        f"build: {len(synthetic)} synthetic + {len(real)} real pairs -> {output} ({describe(summary_pairs)}); "
        f"{len(discarded)} discarded images listed in {output / DISCARDED}"
    )
    return summary


def read_summary(root: Path) -> dict:
    path = Path(root) / SUMMARY
    if not path.is_file():
        raise BenchmarkError(f"{path}: not a finished SynCXR root (run `python -m recipes.syncxr build`)")
    return json.loads(path.read_text(encoding="utf-8"))
