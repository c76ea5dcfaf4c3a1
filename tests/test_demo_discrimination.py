"""Every supervised demo task tells a trained encoder from a random one, beyond seed noise.

An encoder briefly trained on the demo's TRAIN images (tests/trained_encoder.py: the
``random:resnet50`` initialisation, a few hundred steps of dense finding prediction plus
linear heads for the classification labels, saved as a plain torchvision checkpoint) and
``random:resnet50`` itself are scored on all 7 supervised demo tasks (classification,
segmentation, detection) at 100% of the labels with seeds 0, 1 and 2, with the demo suite's
own settings (benchmark/suites.py DEMO_EXTRA), on the FULL demo suite that the quickstart runs
(scale 1.0, ~3,700 images). The test-scale suite of the other tests (scale 0.35) is too small
for this check: its CheXpert test split is so small that random init's probe AUC ranged
74.7-82.1 over three seeds, wider than any encoder gap.

For each task, on its SOUND metric (classification: the headline AUC / accuracy;
segmentation: ``dice_positive``, the mean per-image Dice over positive test images, which
cannot be won by predicting nothing; detection: the all-images mAP):

    mean(trained) - mean(random) > spread,
    spread = max over the two encoders of (max - min over the 3 seeds),

i.e. the gap between the encoders exceeds the largest seed-to-seed range either encoder shows.
Every unit must also have converged: its best epoch comes strictly before its epoch cap
(early stopping fired, or the best epoch came earlier). Run with ``pytest -s`` to see the table.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

# Opt-in (about 45 min on 2 idle CPU cores):
#   MEDVLP_DEMO_QUALITY=1 .venv/bin/python -m pytest -s tests/test_demo_discrimination.py
# Under segmentation/detection protocol v1 it FAILED on chexpert_cls, siim_seg, rsna_seg,
# objectcxr_det and rsna_det; under the current settings (measured 2026-12-01) it passes the
# three classification tasks and FAILS on siim_seg, rsna_seg, objectcxr_det and rsna_det (README,
# "Demo suite: what its numbers mean"), so it is kept out of the default run.
pytestmark = pytest.mark.skipif(
    not os.environ.get("MEDVLP_DEMO_QUALITY"),
    reason="opt-in demo discrimination check (MEDVLP_DEMO_QUALITY=1; about 45 min; "
    "it fails on the 4 segmentation and detection tasks today, see README)",
)

from benchmark.cli import main  # noqa: E402 (after the skip mark: no heavy imports when skipped)
from benchmark.results import read_results  # noqa: E402

from .convergence import best_and_cap  # noqa: E402
from .trained_encoder import train_demo_encoder  # noqa: E402

SEEDS = (0, 1, 2)
TASKS = ("chexpert_cls", "covidx_cls", "rsna_cls", "siim_seg", "rsna_seg", "objectcxr_det", "rsna_det")


def sound_metric(result) -> float:
    if result.family == "segmentation":
        return float(result.metrics["dice_positive"])
    if result.family == "detection":
        return float(result.metrics["map"])
    return float(result.value)


@pytest.fixture(scope="module")
def full_demo_root(tmp_path_factory):
    from benchmark.demo import generate_demo_suite

    root = tmp_path_factory.mktemp("full-demo-suite")
    generate_demo_suite(root, scale=1.0, progress=False)
    return root


@pytest.fixture(scope="module")
def trained_checkpoint(full_demo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("trained-encoder")
    log: dict = {}
    path = train_demo_encoder(full_demo_root, work / "cache", work / "resnet50_demo_trained.pt", log=log)
    print(f"\ntrained encoder: {log['steps']} steps in {log['seconds']:.0f} s")
    return path


def test_trained_encoder_beats_random_init_beyond_seed_spread_on_every_task(
    full_demo_root, tmp_path, trained_checkpoint
):
    results, seconds = {}, {}
    for name, spec in (("random", "random:resnet50"), ("trained", str(trained_checkpoint))):
        out = tmp_path / name
        started = time.perf_counter()
        assert (
            main(
                [
                    "--encoder",
                    spec,
                    "--suite",
                    "demo",
                    "--demo-root",
                    str(full_demo_root),
                    "--cache-dir",
                    str(tmp_path / "cache"),
                    "--output",
                    str(out),
                    "--no-progress",
                    "--workers",
                    "0",
                    "--tasks",
                    "classification,segmentation,detection",
                    "--fractions",
                    "100",
                    "--seeds",
                    ",".join(map(str, SEEDS)),
                ]
            )
            == 0
        )
        seconds[name] = time.perf_counter() - started
        results[name] = {(r.unit.task, r.unit.seed): r for r in read_results(out)}
        assert set(results[name]) == {(t, s) for t in TASKS for s in SEEDS}
    trained_any = next(iter(results["trained"].values()))
    assert trained_any.encoder["format"] == "torchvision_resnet"
    assert trained_any.encoder["load_report"]["n_loaded"] == trained_any.encoder["load_report"]["n_expected"] > 0

    not_converged = [
        (name, task, seed, *best_and_cap(r))
        for name in results
        for (task, seed), r in results[name].items()
        if best_and_cap(r)[0] >= best_and_cap(r)[1]
    ]

    rows, failures = [], []
    for task in TASKS:
        values = {name: [sound_metric(results[name][(task, seed)]) for seed in SEEDS] for name in results}
        spread = max(max(v) - min(v) for v in values.values())
        gap = statistics.mean(values["trained"]) - statistics.mean(values["random"])
        metric = {"segmentation": "dice_positive", "detection": "map"}.get(
            results["random"][(task, 0)].family, results["random"][(task, 0)].metric
        )
        rows.append((task, metric, values, spread, gap))
        if not gap > spread:
            failures.append(task)

    def cell(v):
        return f"{100 * statistics.mean(v):6.2f} ± {100 * statistics.stdev(v):5.2f}"

    lines = [
        f"{'task':14s} {'metric':14s} {'random (mean ± std)':>20s} {'trained (mean ± std)':>21s} "
        f"{'gap':>7s} {'spread':>7s}"
    ]
    for task, metric, values, spread, gap in rows:
        lines.append(
            f"{task:14s} {metric:14s} {cell(values['random']):>20s} {cell(values['trained']):>21s} "
            f"{100 * gap:7.2f} {100 * spread:7.2f}"
        )
    lines.append(
        f"(x100; seeds {SEEDS}; 100% labels; wall: random {seconds['random']:.0f} s, "
        f"trained {seconds['trained']:.0f} s)"
    )
    print("\n" + "\n".join(lines))

    assert not not_converged, (
        f"units whose best epoch is the last allowed one (encoder, task, seed, best, cap): {not_converged}"
    )
    assert not failures, (
        "trained - random gap not above the seed spread on: " + ", ".join(failures) + "\n" + "\n".join(lines)
    )
