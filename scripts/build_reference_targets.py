#!/usr/bin/env python
"""Write (or ``--check``) the demo suite's reference targets.

The standard demo suite (``benchmark.demo``, seed 0, scale 1.0) is deterministic, so the
targets of its test images are fixed: this script generates it (or reuses ``--demo-root``),
builds its split manifests, and writes, per dataset, the targets the harness derives from the
demo label files for the test images to ``benchmark/data/reference_targets/demo/``
(see benchmark/reference_targets.py). Validation and the leaderboard refuse a demo
predictions file on these test images whose targets differ. The paper suite's references
are written by ``tasks/build_manifests.py``.

    .venv/bin/python scripts/build_reference_targets.py           # rewrite (about 30 s)
    .venv/bin/python scripts/build_reference_targets.py --check   # rebuild in memory and compare
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmark import reference_targets as rt  # noqa: E402
from benchmark.demo import read_marker  # noqa: E402
from benchmark.registry import all_tasks  # noqa: E402
from benchmark.suites import demo_suite  # noqa: E402
from benchmark.task_data import load_task_data  # noqa: E402


def demo_references(demo_root: Path, cache: Path) -> dict[str, object]:
    """{file stem: canonical table} for every dataset of the STANDARD demo suite at
    ``demo_root`` (generated there when absent)."""
    suite = demo_suite(demo_root, progress=False)
    parameters, _ = read_marker(demo_root)
    if (parameters.seed, parameters.scale, parameters.image_size) != (0, 1.0, 128):
        raise SystemExit(
            f"{demo_root} holds a non-standard demo suite ({parameters.to_json()}); "
            "the references are for seed 0, scale 1.0, image size 128"
        )
    by_dataset: dict[str, list] = {}
    for task in all_tasks().values():
        if rt.has_targets(task):
            by_dataset.setdefault(task.dataset, []).append(task)
    out = {}
    for dataset, tasks in sorted(by_dataset.items()):
        data = load_task_data(tasks[0], suite, cache)
        out.update(rt.dataset_references(tasks, data.records, data.split_ids["test"]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="rebuild in memory and compare with the committed files")
    parser.add_argument(
        "--demo-root",
        type=Path,
        default=None,
        help="an existing STANDARD demo suite (default: generate one in a temporary folder)",
    )
    parser.add_argument("--out", type=Path, default=rt.REFERENCE_DIR / "demo")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medvlp-reference-") as work:
        root = args.demo_root or Path(work) / "demo-suite"
        tables = demo_references(root, Path(work) / "cache")
    failures = 0
    for stem, table in tables.items():
        path = args.out / f"{stem}.csv.gz"
        if args.check:
            same = path.is_file() and path.read_bytes() == rt.reference_bytes(table)
            failures += not same
            print(f"{stem}: {len(table)} rows {'OK' if same else 'MISMATCH or missing: ' + str(path)}")
        else:
            rt.write_reference(table, path)
            print(f"{stem}: wrote {len(table)} rows to {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
