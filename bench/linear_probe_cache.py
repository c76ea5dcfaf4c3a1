"""Benchmark: cached linear probe vs exact mode (--no-feature-cache) on the demo suite.

    .venv/bin/python bench/linear_probe_cache.py [--encoder random:resnet18] [--task rsna_cls] [--device cpu]

Runs one task at 100% labels three times: cached with a cold cache (features extracted once),
cached with a warm cache (features read from disk), and in exact mode (the encoder runs on
freshly augmented images every epoch). Prints wall times, speed-up ratios and the metric of
each, so the cache's approximation (a fixed set of augmented views) can be checked against
the exact protocol. Not a test: timings depend on the machine.
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
    parser.add_argument("--encoder", default="random:resnet18")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; metrics are averaged over them")
    parser.add_argument("--task", default="rsna_cls")
    parser.add_argument("--fraction", default="100")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo-root", default=None, help="existing demo suite (default: the harness cache's)")
    parser.add_argument("--workers", default="1")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="medvlp-bench-"))
    common = ["--encoder", args.encoder, "--suite", "demo", "--tasks", args.task, "--fractions", args.fraction,
              "--seeds", args.seeds, "--device", args.device, "--no-progress", "--workers", args.workers]
    if args.demo_root:
        common += ["--demo-root", args.demo_root]
    try:
        cache = work / "cache"
        cold = timed_run(common + ["--cache-dir", str(cache), "--output", str(work / "cached")])
        warm = timed_run(common + ["--cache-dir", str(cache), "--output", str(work / "cached"), "--overwrite"])
        exact = timed_run(common + ["--cache-dir", str(work / "cache-exact"), "--output", str(work / "exact"), "--no-feature-cache"])
        seeds = [int(s) for s in args.seeds.split(",")]
        names = [f"{args.task}_frac{args.fraction}_seed{s}.json" for s in seeds]
        cached_results = [read_result(work / "cached" / args.task / n) for n in names]
        exact_results = [read_result(work / "exact" / args.task / n) for n in names]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cached_result, exact_result = cached_results[0], exact_results[0]
    cached_mean = sum(r.value for r in cached_results) / len(seeds)
    exact_mean = sum(r.value for r in exact_results) / len(seeds)
    metric = cached_result.metric
    print(f"task {args.task} at {args.fraction}% labels, encoder {args.encoder}, device {cached_result.provenance['device']}")
    print(f"train images {cached_result.data['n_train']}, cached views per image {cached_result.hyperparameters['train_views_cached']}")
    print(f"seeds {seeds}; metrics are means over seeds")
    print(f"cached, cold cache : {cold:8.1f} s   ({metric} {100 * cached_mean:.2f}, best epochs {[r.training['best_epoch'] for r in cached_results]})")
    print(f"cached, warm cache : {warm:8.1f} s")
    print(f"exact (no cache)   : {exact:8.1f} s   ({metric} {100 * exact_mean:.2f}, best epochs {[r.training['best_epoch'] for r in exact_results]}, "
          f"{sum(r.training['epochs_run'] for r in exact_results)} epochs of encoder passes)")
    print(f"speed-up: {exact / cold:.1f}x (cold cache), {exact / warm:.1f}x (warm cache)")
    print(f"metric difference (cached - exact): {100 * (cached_mean - exact_mean):+.2f} points")


if __name__ == "__main__":
    main()
