"""Benchmark: detection with cached frozen pyramids vs exact mode (--no-feature-cache).

    .venv/bin/python bench/detection_speed.py [--encoder random:resnet50] [--task objectcxr_det] [--fraction 100]

The detection protocol has no augmentation, so the frozen encoder's layer2/3/4 maps of an
image never change: the harness computes them once (fp16 on disk, FeatureCache) and trains the
YOLOv3 neck + head on them. Exact mode runs the mmdet model's frozen backbone on the decoded
images in every training and validation step instead. This script runs one unit three ways
(cached with a cold cache, cached with a warm cache, exact) and prints wall times, the
speed-up and both mAPs (identical: exact mode recomputes the same fp16-rounded maps in every step). Not a test: timings
depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.cli import main as cli_main  # noqa: E402
from benchmark.results import read_result  # noqa: E402


def timed_run(args: list[str]) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(args)
    if code != 0:
        raise SystemExit(f"run failed ({code}): {' '.join(args)}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="random:resnet50")
    parser.add_argument("--task", default="objectcxr_det")
    parser.add_argument("--fraction", default="100")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo-root", default=None, help="existing demo suite (default: the harness cache's)")
    parser.add_argument("--workers", default="0")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="medvlp-det-bench-"))
    common = ["--encoder", args.encoder, "--suite", "demo", "--tasks", args.task, "--fractions", args.fraction,
              "--seeds", "0", "--device", args.device, "--no-progress", "--workers", args.workers]
    if args.demo_root:
        common += ["--demo-root", args.demo_root]
    name = f"{args.task}_frac{args.fraction}_seed0.json"
    try:
        cache = work / "cache"
        cold = timed_run(common + ["--cache-dir", str(cache), "--output", str(work / "cached")])
        warm = timed_run(common + ["--cache-dir", str(cache), "--output", str(work / "cached"), "--overwrite"])
        exact = timed_run(common + ["--cache-dir", str(work / "cache-exact"), "--output", str(work / "exact"), "--no-feature-cache"])
        cached_result = read_result(work / "cached" / args.task / name)
        exact_result = read_result(work / "exact" / args.task / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"task {args.task} at {args.fraction}% labels, encoder {args.encoder}, device {cached_result.provenance['device']}")
    print(f"train / val / test images {cached_result.data['n_train']} / {cached_result.data['n_val']} / {cached_result.data['n_test']}, "
          f"input {cached_result.hyperparameters['input_size']}")
    for label, seconds, result in (("cached, cold cache", cold, cached_result), ("cached, warm cache", warm, cached_result),
                                   ("exact (no cache)  ", exact, exact_result)):
        print(f"{label}: {seconds:8.1f} s   (mAP {100 * result.value:.2f}, epochs {result.training['epochs_run']}, "
              f"best {result.training['best_epoch']})")
    print(f"speed-up: {exact / cold:.1f}x (cold cache), {exact / warm:.1f}x (warm cache)")
    print(f"mAP difference (cached - exact): {100 * (cached_result.value - exact_result.value):+.2f} points")


if __name__ == "__main__":
    main()
