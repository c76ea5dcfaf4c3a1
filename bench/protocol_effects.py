"""Measurement: what each protocol-v2 change of segmentation and detection does to the numbers.

    .venv/bin/python bench/protocol_effects.py [--encoder random:resnet50] [--seeds 0,1,2]
        [--fraction 100] [--tasks objectcxr_det,rsna_det,siim_seg,rsna_seg] [--out DIR]

On 2026-12-01 segmentation and detection moved to protocol v2 (docs/protocol.md): the
reference's stretch geometry, its YOLOv3 assignment / loss / objectness-only score, and its
segmentation augmentation (shift 0, zero border). This script scores one encoder on the FULL
demo suite with the old and the new settings side by side, for every seed, so a reader sees
which change matters and by how much compared with the seed spread:

    detection:    v1 (mmdet head, letterbox) | mmdet head -> reference head (letterbox) | v2
    segmentation: v1 (letterbox, shift 0.0625 + reflected border) | v2

Each variant is the demo suite with its recipe overrides (recorded in every unit key, so the
variants never share results). The demo's images are square, so on the demo letterbox and
stretch differ only in interpolation (area vs linear); on Object-CXR's real, non-square
images the geometry itself differs. Prints one table (sound metric x100: all-images mAP,
``dice_positive``; with the reference-rule value beside it) and writes it to ``--out``.
Not a test: a full run takes tens of minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

V1_AUGMENTATION = {"shift_limit": 0.0625, "scale_limit": 0.1, "rotate_limit": 10.0, "p": 0.5, "border": "reflect_101"}
VARIANTS = {
    "detection": {
        "v1 (mmdet head, letterbox)": {"yolo": "mmdet", "geometry": "letterbox"},
        "reference head, letterbox": {"yolo": "reference", "geometry": "letterbox"},
        "v2 (reference head, stretch)": {},
    },
    "segmentation": {
        "v1 (letterbox, shift .0625, reflect)": {"geometry": "letterbox", "augmentation": V1_AUGMENTATION},
        "v2 (stretch, shift 0, zero border)": {},
    },
}
RECIPE_KEY = {"detection": "detection_recipe", "segmentation": "segmentation_recipe"}


def run_variant(args, family: str, overrides: dict, tasks: list[str], out: Path) -> dict:
    """Run ``tasks`` of ``family`` with the demo suite's recipe plus ``overrides``."""
    import benchmark.suites as suites
    from benchmark.cli import main
    from benchmark.results import read_results

    base = dict(suites.DEMO_EXTRA)
    key = RECIPE_KEY[family]
    suites.DEMO_EXTRA = {**base, key: {**base.get(key, {}), **overrides}}
    try:
        code = main(
            [
                "--encoder",
                args.encoder,
                "--suite",
                "demo",
                "--demo-root",
                str(args.demo_root),
                "--cache-dir",
                str(args.cache),
                "--output",
                str(out),
                "--no-progress",
                "--tasks",
                ",".join(tasks),
                "--fractions",
                str(args.fraction),
                "--seeds",
                args.seeds,
                "--workers",
                "0",
            ]
        )
    finally:
        suites.DEMO_EXTRA = base
    if code != 0:
        raise SystemExit(f"the benchmark run for {overrides} failed with exit code {code}")
    return {(r.unit.task, r.unit.seed): r for r in read_results(out) if r.unit.task in tasks}


def sound(result) -> tuple[float, float]:
    """(sound metric, reference-rule metric) x100."""
    if result.family == "segmentation":
        return 100 * float(result.metrics["dice_positive"]), 100 * float(result.metrics["dice"])
    return 100 * float(result.metrics["map"]), 100 * float(result.metrics.get("map_reference", float("nan")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="random:resnet50")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fraction", type=int, default=100)
    parser.add_argument("--tasks", default="objectcxr_det,rsna_det,siim_seg,rsna_seg")
    parser.add_argument("--out", type=Path, default=Path("bench-out/protocol_effects"))
    parser.add_argument("--demo-scale", type=float, default=1.0, help="1.0 = the full demo suite the quickstart runs")
    args = parser.parse_args()
    from benchmark.demo import generate_demo_suite
    from benchmark.registry import all_tasks
    from benchmark.suites import DEMO_MARKER

    args.out.mkdir(parents=True, exist_ok=True)
    args.demo_root, args.cache = args.out / "demo-suite", args.out / "cache"
    if not (args.demo_root / DEMO_MARKER).is_file():  # written last by the generator
        generate_demo_suite(args.demo_root, scale=args.demo_scale, progress=False)
    tasks = all_tasks()
    wanted = [t for t in args.tasks.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = [
        f"encoder {args.encoder}; full demo suite (scale {args.demo_scale}); {args.fraction}% labels; seeds {seeds}",
        f"{'task':14s} {'variant':38s} {'sound metric per seed':>26s} {'mean':>7s} {'range':>6s} "
        f"{'ref. rule mean':>14s} {'minutes':>7s}",
    ]
    table = []
    for family, variants in VARIANTS.items():
        family_tasks = [t for t in wanted if tasks[t].family == family]
        if not family_tasks:
            continue
        for name, overrides in variants.items():
            started = time.perf_counter()
            folder = args.out / "results" / family / name.split(" ")[0].replace(",", "")
            results = run_variant(args, family, overrides, family_tasks, folder)
            minutes = (time.perf_counter() - started) / 60
            for task in family_tasks:
                values = [sound(results[(task, s)]) for s in seeds]
                main_values = [v[0] for v in values]
                row = {
                    "task": task,
                    "variant": name,
                    "overrides": overrides,
                    "seeds": seeds,
                    "sound": main_values,
                    "reference_rule": [v[1] for v in values],
                    "best_epochs": [results[(task, s)].training["best_epoch"] for s in seeds],
                    "minutes_all_tasks": minutes,
                }
                table.append(row)
                per_seed = " / ".join(f"{v:5.1f}" for v in main_values)
                lines.append(
                    f"{task:14s} {name:38s} {per_seed:>26s} {statistics.mean(main_values):7.2f} "
                    f"{max(main_values) - min(main_values):6.2f} "
                    f"{statistics.mean(v[1] for v in values):14.2f} {minutes:7.1f}"
                )
            print("\n".join(lines[-len(family_tasks) :]), flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    (args.out / "protocol_effects.txt").write_text(text + "\n")
    (args.out / "protocol_effects.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
