"""Every unit of the committed demo submissions converged: its best epoch is below its cap.

The demo suite's heads are meant to train until early stopping fires, so that a demo number
says something about the encoder and not about where training was cut off. The committed
submissions (rebuilt by scripts/build_demo_leaderboard.py) are the full demo at 1%, 10% and
100% labels for four encoders, so they cover every supervised demo unit at seed 0.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.results import read_results
from benchmark.suites import DEMO_EXTRA

from .convergence import best_and_cap, converged

ROOT = Path(__file__).resolve().parents[1]
SUPERVISED = {"classification", "segmentation", "detection"}


def committed_demo_results():
    for folder in sorted(ROOT.glob("submissions/demo-*/results/demo")):
        for result in read_results(folder):
            if result.family in SUPERVISED:
                yield folder.parts[-3], result


def test_every_committed_demo_unit_stopped_before_its_epoch_cap():
    units = list(committed_demo_results())
    # 4 submissions (random init, ConVIRT real / tiny-SD / SynCXR) x 7 supervised tasks x 3 label fractions
    assert len(units) == 84, f"expected 84 supervised demo units, found {len(units)}"
    stuck = [(name, r.unit.task, r.unit.fraction, *best_and_cap(r)) for name, r in units if not converged(r)]
    assert not stuck, f"units whose best epoch is the last allowed one (submission, task, fraction, best, cap): {stuck}"
    current = json.loads(json.dumps(DEMO_EXTRA))
    for _, result in units:  # made with the demo's current settings
        assert result.suite == "demo" and result.hyperparameters["suite"]["extra"] == current, result.unit
