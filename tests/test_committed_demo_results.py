"""The committed demo results are what the current harness would compute: a rerun of the
committed random-init baseline on a freshly generated demo suite finds every unit finished.

A unit is reused only when its unit key (task, suite settings, encoder, manifest, the image
bytes, the unit, the flags and the family's plan) matches, so this fails whenever a change
alters what a demo unit would compute without the committed demo being rebuilt
(``scripts/build_demo_leaderboard.py``). The random-init baseline is the one committed
submission whose encoder needs no checkpoint file, so it is the one that can be checked on a
fresh clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmark.cli import main
from benchmark.results import read_results

from .cli_args import demo_cli_args

COMMITTED = Path(__file__).resolve().parents[1] / "submissions" / "demo-random-init" / "results" / "demo"


def test_the_committed_random_init_demo_results_are_reused_unit_for_unit(tmp_path, capsys):
    from benchmark.demo import generate_demo_suite

    committed = read_results(COMMITTED)
    assert len(committed) == 21  # 7 supervised tasks x 3 fractions, seed 0
    demo_root = tmp_path / "demo-suite"
    generate_demo_suite(demo_root, progress=False)  # the full-size demo suite, as the quickstart makes it
    output = tmp_path / "results"
    shutil.copytree(COMMITTED, output)
    before = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}

    args = demo_cli_args(demo_root, tmp_path / "cache", output, encoder="random:resnet50")
    assert main(args) == 0
    printed = "".join(capsys.readouterr())
    assert "resume: 21 of 21 units already finished" in printed and "running 0" in printed, printed[-2000:]
    after = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    assert after == before  # nothing recomputed, nothing rewritten
