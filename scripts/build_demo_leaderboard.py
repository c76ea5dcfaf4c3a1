#!/usr/bin/env python
"""Rebuild the committed DEMO leaderboard (the smoke suite) with the real pipeline, on the CPU.

Every number in ``leaderboards/demo/`` comes from three submissions that this script builds
end to end, deterministically (fixed seeds everywhere):

1. the demo suite (``benchmark.demo``; default ``~/.cache/medvlp-bench/demo-suite``, or ``--demo-root``);
2. a tiny random BERT + WordPiece tokenizer trained on the demo reports (``recipes.pretraining.tiny_text``);
3. a tiny random Stable Diffusion pipeline (``recipes.synthesis.tiny``) that replaces every demo
   MIMIC-CXR-JPG image by a synthetic one (``python -m recipes.synthesis generate``);
4. ConVIRT pretraining of a ResNet-50 (random init, small images, a few epochs) once on the REAL
   demo images and once on the SYNTHETIC (tiny-SD) ones (``python -m recipes.pretraining``);
5. the SynCXR recipe (``python -m recipes.syncxr run``) on the demo reports: entities, balanced
   entity sets, reports from a tiny random causal LM (``recipes.syncxr.tiny``; its text never names
   the requested entities, so the recipe's fallback rule completes it), one tiny-SD image per
   synthetic IMPRESSION, curation by a tiny random LLaVA, and a root of PURELY SYNTHETIC pairs on
   which ConVIRT pretrains with ``--image-source real`` (``demo-convirt-syncxr``);
6. ``run_benchmark.py --suite demo --submission NAME`` over every demo task for
   ``demo-convirt-real``, ``demo-convirt-tinysd``, ``demo-convirt-syncxr`` and the
   ``random:resnet50`` baseline ``demo-random-init`` (zero-shot tasks run for the ConVIRT rows,
   which have a text side);
7. ``submission.yaml`` filled in, ``run_benchmark.py validate-submission`` on each, then
   ``run_benchmark.py leaderboard``. ``--only NAME,...`` builds (and validates) only those
   submissions and what they need; the leaderboard is rendered from every submission present.

Checkpoints, the tiny models and the synthetic images go to ``--work`` (never committed); the
submissions keep only result JSONs and per-image predictions. A rerun resumes: finished steps
and benchmark units are skipped (``--fresh`` starts over). The numbers show what a leaderboard
looks like; they are NOT comparable with published results.

    .venv/bin/python scripts/build_demo_leaderboard.py   # pretraining ~1 min each; the 4 benchmark runs dominate
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.suites import DEFAULT_CACHE  # noqa: E402

SEED = 0
GENERATOR = "tiny-sd"  # the synthetic images' generator name (schema: "other")
CHECKPOINT_URL = "n/a (rebuilt by scripts/build_demo_leaderboard.py)"
COMMON_META = {"paper": "n/a", "code": "n/a", "licence": "Apache-2.0", "contact": "medvlp-bench maintainers"}
DEMO_DATASET = "demo MIMIC-CXR-JPG replica (benchmark.demo; synthetic smoke data)"
SYNCXR_DATASET = "demo SynCXR pairs (recipes.syncxr on the demo MIMIC-CXR replica: synthetic reports and images)"
NAMES = ("demo-random-init", "demo-convirt-real", "demo-convirt-tinysd", "demo-convirt-syncxr")
WORK_FOLDERS = {  # what --fresh --only NAME removes from the work folder
    "demo-random-init": (),
    "demo-convirt-real": ("pretrain-real",),
    "demo-convirt-tinysd": ("synthetic", "pretrain-tinysd"),
    "demo-convirt-syncxr": ("tiny-llm", "tiny-mllm", "syncxr", "syncxr-root", "pretrain-syncxr"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/build_demo_leaderboard.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--demo-root",
        type=Path,
        default=None,
        help="demo suite folder (default: <cache-dir>/demo-suite; generated when absent)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="harness feature cache (default: $MEDVLP_CACHE or ~/.cache/medvlp-bench)",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="tiny models, synthetic images and checkpoints (default: <cache-dir>/demo-leaderboard-work)",
    )
    p.add_argument(
        "--submissions-dir",
        type=Path,
        default=ROOT / "submissions",
        help="where the demo-* submissions are written (default: the repository's)",
    )
    p.add_argument(
        "--leaderboards-dir",
        type=Path,
        default=ROOT / "leaderboards",
        help="where the leaderboards are rendered (default: the repository's)",
    )
    p.add_argument(
        "--tasks", default="all", help="benchmark tasks (default: all; a subset gives incomplete, invalid submissions)"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=64,
        help="pretraining: resize the longer side to this (crop = 7/8 of it; default 64/56)",
    )
    p.add_argument("--epochs", type=int, default=2, help="pretraining epochs over the demo pairs (default 2)")
    p.add_argument("--batch-size", type=int, default=16, help="pretraining batch size (default 16)")
    p.add_argument(
        "--lr",
        type=float,
        default=1e-4,
        help="pretraining learning rate (default 1e-4; official 2e-5 is for 50 epochs)",
    )
    p.add_argument("--synthesis-size", type=int, default=64, help="synthetic image side in pixels (default 64)")
    p.add_argument("--synthesis-steps", type=int, default=4, help="tiny-SD sampling steps (default 4)")
    p.add_argument(
        "--workers", type=int, default=None, help="benchmark image-decoding workers (default: the harness's)"
    )
    p.add_argument(
        "--syncxr-count", type=int, default=400, help="SynCXR: entity sets = synthetic reports (default 400)"
    )
    p.add_argument(
        "--syncxr-usage-ratio",
        type=float,
        default=0.3,
        help="SynCXR: usage-ratio cap (default 0.3: the demo reports hold few distinct entities)",
    )
    p.add_argument(
        "--only",
        default=None,
        metavar="NAMES",
        help=f"comma-separated submissions to build (default all: {', '.join(NAMES)})",
    )
    p.add_argument("--fresh", action="store_true", help="delete the work folder and the demo-* submissions first")
    p.add_argument("--no-leaderboard", action="store_true", help="stop after validating the submissions")
    return p


def log(message: str) -> None:
    print(f"[demo-leaderboard] {message}", flush=True)


def run(cmd: list[str], what: str) -> float:
    log(f"{what}: {' '.join(cmd)}")
    start = time.perf_counter()
    rc = subprocess.call(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if rc != 0:
        raise SystemExit(f"[demo-leaderboard] {what} failed with status {rc}")
    return time.perf_counter() - start


def pretrain(a, demo_root: Path, bert: Path, output: Path, synthetic: Path | None) -> Path:
    source = (
        []
        if synthetic is None
        else ["--image-source", "synthetic", "--synthetic-root", str(synthetic), "--generator", GENERATOR]
    )
    name = f"convirt-{'real' if synthetic is None else GENERATOR}-resnet50.ckpt"
    if (output / name).is_file():
        log(f"pretraining: {output / name} exists, skipped")
        return output / name
    crop = a.image_size * 7 // 8
    run(
        [
            sys.executable,
            "-m",
            "recipes.pretraining",
            "--method",
            "convirt",
            "--data-root",
            str(demo_root),
            "--text-encoder",
            str(bert),
            *source,
            "--arch",
            "resnet50",
            "--image-init",
            "random",
            "--resize",
            str(a.image_size),
            "--crop",
            str(crop),
            "--upsample",
            "0",
            "--max-words",
            "64",
            "--batch-size",
            str(a.batch_size),
            "--epochs",
            str(a.epochs),
            "--lr",
            str(a.lr),
            "--seed",
            str(SEED),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--no-validate",
            "--no-progress",
            "--output",
            str(output),
        ],
        f"pretraining ({name})",
    )
    return output / name


def build_syncxr(a, demo_root: Path, image_model: Path, work: Path) -> Path:
    """The SynCXR root of the demo (module docstring, step 5); resumes like the recipe."""
    from recipes.syncxr.tiny import tiny_sd_images, write_tiny_causal_lm, write_tiny_image_text_model

    llm, mllm, root = work / "tiny-llm", work / "tiny-mllm", work / "syncxr-root"
    if not (llm / "config.json").is_file():
        write_tiny_causal_lm(demo_root, llm, seed=SEED)
    if not (mllm / "config.json").is_file():
        calibration = tiny_sd_images(image_model, count=16, size=a.synthesis_size, steps=a.synthesis_steps)
        write_tiny_image_text_model(mllm, seed=SEED, calibration=calibration)
    if (root / "SYNCXR.json").is_file():
        log(f"SynCXR: {root} exists, skipped")
        return root
    run(
        [
            sys.executable,
            "-m",
            "recipes.syncxr",
            "run",
            "--data-root",
            str(demo_root),
            "--work",
            str(work / "syncxr"),
            "--output",
            str(root),
            "--llm",
            str(llm),
            "--image-model",
            str(image_model),
            "--mllm",
            str(mllm),
            "--count",
            str(a.syncxr_count),
            "--usage-ratio",
            str(a.syncxr_usage_ratio),
            "--max-new-tokens-findings",
            "32",
            "--max-new-tokens-impression",
            "16",
            "--preset",
            "sd21",
            "--height",
            str(a.synthesis_size),
            "--width",
            str(a.synthesis_size),
            "--steps",
            str(a.synthesis_steps),
            "--scheduler",
            "ddim",
            "--image-seed",
            "42",
            "--image-dtype",
            "fp32",
            "--generator-name",
            GENERATOR,
            "--device",
            "cpu",
            "--no-progress",
        ],
        "SynCXR recipe",
    )
    return root


def benchmark(a, demo_root: Path, spec: str, name: str) -> float:
    cmd = [
        sys.executable,
        str(ROOT / "run_benchmark.py"),
        "--encoder",
        spec,
        "--suite",
        "demo",
        "--demo-root",
        str(demo_root),
        "--cache-dir",
        str(a.cache_dir),
        "--tasks",
        a.tasks,
        "--device",
        "cpu",
        "--submission",
        name,
        "--submissions-dir",
        str(a.submissions_dir),
        "--no-progress",
    ]
    if a.workers is not None:
        cmd += ["--workers", str(a.workers)]
    return run(cmd, f"benchmark {name}")


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from benchmark.submissions import validate_submission
    from benchmark.suites import demo_suite
    from recipes.pretraining.chain import fill_submission, link_checkpoint
    from recipes.pretraining.tiny_text import write_tiny_bert
    from recipes.synthesis.tiny import write_tiny_pipeline

    work = a.work or a.cache_dir / "demo-leaderboard-work"
    names = tuple(n for n in a.only.split(",") if n) if a.only else NAMES
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise SystemExit(f"--only: unknown submission(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")
    if a.fresh:  # with --only, only the work of the named submissions (the tiny BERT and SD are shared)
        for folder in [work] if not a.only else [work / f for name in names for f in WORK_FOLDERS[name]]:
            shutil.rmtree(folder, ignore_errors=True)
        for name in names:
            shutil.rmtree(a.submissions_dir / name, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    start = time.perf_counter()

    t = time.perf_counter()
    demo_root = demo_suite(a.demo_root or a.cache_dir / "demo-suite", progress=False).data_roots.root
    times["demo suite"] = time.perf_counter() - t
    log(f"demo suite: {demo_root}")

    t = time.perf_counter()
    bert = work / "tiny-bert"
    if not (bert / "config.json").is_file():
        write_tiny_bert(demo_root, bert, seed=SEED)
    model = work / "tiny-sd"
    if not (model / "model_index.json").is_file():
        write_tiny_pipeline(model, seed=SEED)
    times["tiny BERT + tiny SD"] = time.perf_counter() - t

    synthetic = work / "synthetic"
    times["synthesis"] = (
        0.0
        if "demo-convirt-tinysd" not in names
        else run(
            [
                sys.executable,
                "-m",
                "recipes.synthesis",
                "generate",
                "--data-root",
                str(demo_root),
                "--model",
                str(model),
                "--output",
                str(synthetic),
                "--height",
                str(a.synthesis_size),
                "--width",
                str(a.synthesis_size),
                "--steps",
                str(a.synthesis_steps),
                "--scheduler",
                "ddim",
                "--seed",
                "42",
                "--batch-size",
                "8",
                "--device",
                "cpu",
                "--dtype",
                "fp32",
                "--generator-name",
                GENERATOR,
                "--no-progress",
            ],
            "synthesis",
        )
    )

    checkpoints = {}
    t = time.perf_counter()
    if "demo-convirt-real" in names:
        checkpoints["demo-convirt-real"] = pretrain(a, demo_root, bert, work / "pretrain-real", None)
    times["pretraining (real)"] = time.perf_counter() - t
    t = time.perf_counter()
    if "demo-convirt-tinysd" in names:
        checkpoints["demo-convirt-tinysd"] = pretrain(a, demo_root, bert, work / "pretrain-tinysd", synthetic)
    times["pretraining (tiny-SD)"] = time.perf_counter() - t
    if "demo-convirt-syncxr" in names:
        t = time.perf_counter()
        root = build_syncxr(a, demo_root, model, work)
        times["SynCXR recipe"] = time.perf_counter() - t
        t = time.perf_counter()
        exported = pretrain(a, root, bert, work / "pretrain-syncxr", None)  # the root is read as real data
        checkpoints["demo-convirt-syncxr"] = exported.with_name("convirt-syncxr-resnet50.ckpt")
        link_checkpoint(exported, checkpoints["demo-convirt-syncxr"])
        times["pretraining (SynCXR)"] = time.perf_counter() - t

    settings = (
        f"ConVIRT, ResNet-50 from random init, tiny random BERT (2 layers, 32 wide) trained on the demo reports; "
        f"{a.epochs} epochs, batch {a.batch_size}, lr {a.lr}, images {a.image_size}/{a.image_size * 7 // 8}, "
        f"seed {SEED}."
    )
    runs = [
        (
            "demo-random-init",
            "random:resnet50",
            dict(
                method="Random init",
                method_id="random",
                baseline=True,
                checkpoint={"url": "n/a"},
                pretraining={
                    "images": "none",
                    "generator": None,
                    "reports": "none",
                    "mix_ratio": None,
                    "dataset": "none",
                },
                notes="Seeded random initialisation (random:resnet50), the papers' Random Init row.",
            ),
        ),
        (
            "demo-convirt-real",
            str(checkpoints.get("demo-convirt-real")),
            dict(
                method="ConVIRT (demo)",
                method_id="convirt-demo",
                checkpoint={"url": CHECKPOINT_URL},
                pretraining={"dataset": DEMO_DATASET},
                notes=f"Pretrained on the REAL demo MIMIC-CXR-JPG images. {settings}",
            ),
        ),
        (
            "demo-convirt-tinysd",
            str(checkpoints.get("demo-convirt-tinysd")),
            dict(
                method="ConVIRT (demo)",
                method_id="convirt-demo",
                checkpoint={"url": CHECKPOINT_URL},
                pretraining={"dataset": DEMO_DATASET},
                notes=f"Pretrained on SYNTHETIC images from a tiny random Stable Diffusion pipeline "
                f"({a.synthesis_size}px, {a.synthesis_steps} DDIM steps, seed 42) with the real demo reports. "
                f"{settings}",
            ),
        ),
        (
            "demo-convirt-syncxr",
            str(checkpoints.get("demo-convirt-syncxr")),
            dict(
                method="ConVIRT (demo)",
                method_id="convirt-demo",
                checkpoint={"url": CHECKPOINT_URL},
                pretraining={"dataset": SYNCXR_DATASET},
                notes=f"Pretrained on PURELY SYNTHETIC pairs from the SynCXR recipe (recipes.syncxr): "
                f"{a.syncxr_count} entity sets drawn from the demo reports' entities (usage ratio "
                f"{a.syncxr_usage_ratio}), reports from a tiny random causal LM (it never writes the requested "
                f"entities: the recipe's fallback rule completes its text), images from the tiny random Stable "
                f"Diffusion pipeline "
                f"({a.synthesis_size}px, {a.synthesis_steps} DDIM steps, per-report seeds), curated by a tiny random "
                f"LLaVA; the pairs it kept are listed in the root's SYNCXR.json. {settings}",
            ),
        ),
    ]
    runs = [r for r in runs if r[0] in names]
    for name, spec, meta in runs:
        times[f"benchmark {name}"] = benchmark(a, demo_root, spec, name)
        folder = a.submissions_dir / name
        method = "random" if spec.startswith("random:") else "convirt"
        generator = GENERATOR if name in ("demo-convirt-tinysd", "demo-convirt-syncxr") else "real"
        reports = "synthetic" if name == "demo-convirt-syncxr" else None
        # meta overrides what the chain would fill
        fill_submission(folder, method, generator, {**COMMON_META, **meta}, reports=reports)

    failed = False
    for name, _, _ in runs:
        problems = validate_submission(a.submissions_dir / name, ("demo",))
        log(f"validate-submission {name}: " + ("valid" if not problems else f"{len(problems)} problem(s)"))
        for problem in problems:
            print(f"  - {problem}", flush=True)
        failed |= bool(problems)
    if not a.no_leaderboard:
        times["leaderboard"] = run(
            [
                sys.executable,
                str(ROOT / "run_benchmark.py"),
                "leaderboard",
                "--submissions-dir",
                str(a.submissions_dir),
                "--out",
                str(a.leaderboards_dir),
            ],
            "leaderboard",
        )
    times["total"] = time.perf_counter() - start
    log("wall times: " + "; ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
