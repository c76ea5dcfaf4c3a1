"""Step 4a, ``images``: one image per synthetic report with the synthesis recipe (``recipes.synthesis``).

The synthetic reports are first written as a MIMIC-CXR data root without images,
``<work>/report-root`` (:mod:`recipes.syncxr.layout`: report files, metadata, split and CheXpert
tables; idempotent, so every shard may write it). The synthesis recipe then runs on that root
unchanged (``recipes.synthesis.generate``: resumable, sharded by ``--shard`` and torchrun ranks,
bad images regenerated once) and writes ``<work>/images``, a drop-in MIMIC-CXR-JPG root whose
reports link to the report root.

Prompt section (our choice): the synthesis recipe's rule, the IMPRESSION when it has at least 3
word tokens, which the report step guarantees, so every prompt is the synthetic IMPRESSION
(the section the study names for its image prompts; cut to CLIP's 77 tokens at a word boundary).
Defaults (our choice where the study is silent): the ``roentgen`` preset (512 x 512, guidance
4, PNDM) with 50 steps as in the synthetic-image study, and ``--seed-mode per-report`` (each
image's seed from its dicom_id; one fixed seed for all is ``--seed-mode fixed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchmarkError
from recipes.mimic import MimicLayout

from .layout import (
    chexpert_frame,
    metadata_frame,
    report_relpath,
    report_text,
    split_frame,
    write_gz_csv,
    write_if_changed,
)
from .lexicon import load_lexicon
from .reports import read_reports
from .sampling import read_samples
from .steps import folder_lock, log, provenance, settings_hash, write_manifest

STEP = "images"
STUDY_STEPS = 50
PROMPT_SECTION = "impression"


@dataclass
class ImagesConfig:
    work: Path
    model: Path
    preset: str = "roentgen"
    steps: int | None = STUDY_STEPS
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    scheduler: str | None = None
    seed: int = 42
    seed_mode: str = "per-report"
    batch_size: int = 8
    dtype: str = "auto"
    device: str = "auto"
    shard: str | None = None
    generator_name: str | None = None
    lexicon: str | None = None
    overwrite: bool = False
    progress: bool = True


def folder(work: Path) -> Path:
    return Path(work) / STEP


def report_root(work: Path) -> Path:
    return Path(work) / "report-root"


def study_rows(work: Path) -> list[dict]:
    """One dict per synthetic study: ids, split, the report's sections and the entities found in them."""
    samples = {s["index"]: s for s in read_samples(work)}
    rows = []
    for report in read_reports(work):
        sample = samples.get(report["index"])
        if sample is None or sample["sample_id"] != report["sample_id"]:
            raise BenchmarkError(
                f"{work}: the reports do not belong to the current entity sets ({report['sample_id']}); rerun the "
                "reports step with --overwrite"
            )
        rows.append({**sample, **report})
    return rows


def write_report_root(work: Path, rows: list[dict], height: int, width: int, lexicon) -> Path:
    """The synthetic reports as a MIMIC-CXR root without images (see the module docstring)."""
    root = report_root(work)
    layout = MimicLayout(root)
    with folder_lock(root):
        (layout.jpg / "files").mkdir(parents=True, exist_ok=True)
        for row in rows:
            text = report_text(row["sample_id"], row["findings"], row["impression"])
            write_if_changed(layout.reports / report_relpath(row["subject_id"], row["study_id"]), text)
        write_gz_csv(metadata_frame(rows, height, width), layout.jpg / "mimic-cxr-2.0.0-metadata.csv.gz")
        write_gz_csv(split_frame(rows), layout.jpg / "mimic-cxr-2.0.0-split.csv.gz")
        write_gz_csv(chexpert_frame(rows, lexicon), layout.jpg / "mimic-cxr-2.0.0-chexpert.csv.gz")
    return root


def run(cfg: ImagesConfig) -> dict:
    """Write the report root, then generate (or resume) this shard's images with the synthesis
    recipe; the step manifest is written once every image exists."""
    from recipes.synthesis.generate import GenerationConfig, generate

    rows = study_rows(cfg.work)
    gen = GenerationConfig(
        data_root=report_root(cfg.work),
        model=Path(cfg.model),
        output=folder(cfg.work),
        preset=cfg.preset,
        steps=cfg.steps,
        guidance=cfg.guidance,
        height=cfg.height,
        width=cfg.width,
        scheduler=cfg.scheduler,
        seed=cfg.seed,
        seed_mode=cfg.seed_mode,
        batch_size=cfg.batch_size,
        dtype=cfg.dtype,
        device=cfg.device,
        shard=cfg.shard,
        reports="symlink",
        generator_name=cfg.generator_name,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
    )
    size = gen.resolved()
    root = write_report_root(cfg.work, rows, size["height"], size["width"], load_lexicon(cfg.lexicon))
    log(f"images: {len(rows)} synthetic reports written as a MIMIC-CXR root: {root}")
    summary = generate(gen, log=log)
    complete = summary["merged"] == len(rows) and summary["planned"] == len(rows)
    if summary["planned"] != len(rows):
        raise BenchmarkError(
            f"the synthesis recipe planned {summary['planned']} images for {len(rows)} synthetic reports: some report "
            f"is not in the pair set of {root} (caption under 3 tokens?); check {root}"
        )
    if complete:
        manifest = {
            "step": STEP,
            "prompt_section": PROMPT_SECTION,
            "prompt_rule": "recipes.mimic.pair_set.synthesis_prompt: the IMPRESSION (>= 3 word tokens, guaranteed by "
            "the reports step), cut to CLIP's 77 tokens at a word boundary",
            "report_root": str(root),
            "images": summary["merged"],
            "prompts_impression_findings": summary["prompts_impression_findings"],
            "prompts_truncated": summary["prompts_truncated"],
            "synthesis": {
                k: summary.get(k)
                for k in (
                    "model",
                    "generator",
                    "generator_fingerprint",
                    "preset",
                    "scheduler",
                    "steps",
                    "guidance",
                    "seed",
                    "seed_mode",
                    "height",
                    "width",
                    "dtype",
                    "batch_size",
                    "pair_set",
                )
            },
            "last_shard": summary.get("last_shard"),
            **provenance(),
        }
        manifest["settings_sha256"] = settings_hash(manifest["synthesis"])
        write_manifest(folder(cfg.work), manifest)
        log(f"images: all {len(rows)} images present in {folder(cfg.work)}")
    else:
        log(f"images: {summary['merged']}/{len(rows)} images present; the other shards have work left")
    return summary
