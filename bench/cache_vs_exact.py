"""Shared scaffold of the cache benchmarks: one demo unit run cached (cold cache, then warm
cache) and in exact mode (``--no-feature-cache``), timed, with the results of each.

Used by ``bench/linear_probe_cache.py`` and ``bench/detection_speed.py``; not a benchmark itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.cli import main as cli_main  # noqa: E402
from benchmark.results import Result, read_result  # noqa: E402


def parser(description: str, *, encoder: str, task: str, workers: str) -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    out.add_argument("--encoder", default=encoder)
    out.add_argument("--task", default=task)
    out.add_argument("--fraction", default="100")
    out.add_argument("--seeds", default="0", help="comma-separated seeds; metrics are averaged over them")
    out.add_argument("--device", default="auto")
    out.add_argument("--demo-root", default=None, help="existing demo suite (default: the harness cache's)")
    out.add_argument("--workers", default=workers)
    return out


def timed_run(args: list[str]) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(args)
    if code != 0:
        raise SystemExit(f"run failed ({code}): {' '.join(args)}")
    return time.perf_counter() - started


@dataclass
class Comparison:
    cold: float  # seconds, cached mode with an empty cache
    warm: float  # seconds, cached mode reading the cache
    exact: float  # seconds, --no-feature-cache
    seeds: list[int]
    cached: list[Result]
    exact_results: list[Result]

    @staticmethod
    def mean(results: list[Result]) -> float:
        return sum(r.value for r in results) / len(results)

    def speed_up_line(self) -> str:
        return f"speed-up: {self.exact / self.cold:.1f}x (cold cache), {self.exact / self.warm:.1f}x (warm cache)"

    def difference_line(self, metric: str) -> str:
        return (
            f"{metric} difference (cached - exact): "
            f"{100 * (self.mean(self.cached) - self.mean(self.exact_results)):+.2f} points"
        )


def compare(args: argparse.Namespace) -> Comparison:
    """Run ``args.task`` at ``args.fraction`` three ways in a temporary folder."""
    work = Path(tempfile.mkdtemp(prefix="medvlp-bench-"))
    common = [
        "--encoder",
        args.encoder,
        "--suite",
        "demo",
        "--tasks",
        args.task,
        "--fractions",
        args.fraction,
        "--seeds",
        args.seeds,
        "--device",
        args.device,
        "--no-progress",
        "--workers",
        args.workers,
    ]
    if args.demo_root:
        common += ["--demo-root", args.demo_root]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [f"{args.task}_frac{args.fraction}_seed{s}.json" for s in seeds]
    try:
        cache = work / "cache"
        cold = timed_run(common + ["--cache-dir", str(cache), "--output", str(work / "cached")])
        warm = timed_run(common + ["--cache-dir", str(cache), "--output", str(work / "cached"), "--overwrite"])
        exact = timed_run(
            common + ["--cache-dir", str(work / "cache-exact"), "--output", str(work / "exact"), "--no-feature-cache"]
        )
        cached = [read_result(work / "cached" / args.task / n) for n in names]
        exact_results = [read_result(work / "exact" / args.task / n) for n in names]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Comparison(cold, warm, exact, seeds, cached, exact_results)
