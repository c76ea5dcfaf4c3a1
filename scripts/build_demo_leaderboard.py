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
5. ``run_benchmark.py --suite demo --submission NAME`` over every demo task for
   ``demo-convirt-real``, ``demo-convirt-tinysd`` and the ``random:resnet50`` baseline
   ``demo-random-init`` (zero-shot tasks run for the ConVIRT rows, which have a text side);
6. ``submission.yaml`` filled in, ``run_benchmark.py validate-submission`` on each, then
   ``run_benchmark.py leaderboard``.

Checkpoints, the tiny models and the synthetic images go to ``--work`` (never committed); the
submissions keep only result JSONs and per-image predictions. A rerun resumes: finished steps
and benchmark units are skipped (``--fresh`` starts over). The numbers show what a leaderboard
looks like; they are NOT comparable with published results.

    .venv/bin/python scripts/build_demo_leaderboard.py   # pretraining ~1 min each; the 3 benchmark runs dominate
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
    from recipes.pretraining.chain import fill_submission
    from recipes.pretraining.tiny_text import write_tiny_bert
    from recipes.synthesis.tiny import write_tiny_pipeline

    work = a.work or a.cache_dir / "demo-leaderboard-work"
    names = ("demo-random-init", "demo-convirt-real", "demo-convirt-tinysd")
    if a.fresh:
        shutil.rmtree(work, ignore_errors=True)
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
    times["synthesis"] = run(
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

    t = time.perf_counter()
    real_ckpt = pretrain(a, demo_root, bert, work / "pretrain-real", None)
    times["pretraining (real)"] = time.perf_counter() - t
    t = time.perf_counter()
    synth_ckpt = pretrain(a, demo_root, bert, work / "pretrain-tinysd", synthetic)
    times["pretraining (tiny-SD)"] = time.perf_counter() - t

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
            str(real_ckpt),
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
            str(synth_ckpt),
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
    ]
    for name, spec, meta in runs:
        times[f"benchmark {name}"] = benchmark(a, demo_root, spec, name)
        folder = a.submissions_dir / name
        method = "random" if spec.startswith("random:") else "convirt"
        generator = GENERATOR if name == "demo-convirt-tinysd" else "real"
        fill_submission(folder, method, generator, {**COMMON_META, **meta})  # meta overrides what the chain would fill

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
