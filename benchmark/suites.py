"""Suites: where the data comes from and how it is split.

- ``paper``: the real datasets in their official layouts under the data root, split by the
  committed manifests (``tasks/manifests/``) or, for datasets whose label files cannot be
  shipped (COVIDx), by a manifest built deterministically from the local label files with the
  same recipe. Numbers are comparable with published ones.
- ``demo``: the built-in SMOKE suite. Synthetic images written by
  :mod:`benchmark.demo` in the same official layouts, split by manifests built from them with
  scaled recipes, smaller images and fewer cached views. It runs exactly the same code paths;
  its numbers are NOT comparable with published results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tasks.split_recipes import SPLIT_RECIPES

from .data_roots import DataRoots
from .splits import SplitRecipe

DEMO_MARKER = "DEMO_SUITE.txt"  # written last by the generator
DEFAULT_CACHE = Path(os.environ.get("MEDVLP_CACHE", Path.home() / ".cache" / "medvlp-bench"))
REPO_MANIFESTS = Path(__file__).resolve().parents[1] / "tasks" / "manifests"


@dataclass(frozen=True)
class Suite:
    name: str
    comparable: bool  # False for the smoke suite
    data_roots: DataRoots
    split_recipes: dict[str, SplitRecipe]
    use_committed_manifests: bool
    train_views: int  # cached augmented views per training image
    resize: int | None = None  # override of the tasks' image sizes (demo: smaller)
    crop: int | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "comparable_with_published": self.comparable,
            "train_views": self.train_views,
            "resize": self.resize,
            "crop": self.crop,
            "notes": self.notes,
            "extra": self.extra,
        }


def paper_suite(data_roots: DataRoots, train_views: int = 4) -> Suite:
    return Suite(
        name="paper",
        comparable=True,
        data_roots=data_roots,
        split_recipes=dict(SPLIT_RECIPES),
        use_committed_manifests=True,
        train_views=train_views,
        notes="MGCA downstream protocol on the official datasets",
    )


DEMO_SPLITS = {
    "chexpert": replace(SPLIT_RECIPES["chexpert"], val=0.15),
    "rsna": replace(SPLIT_RECIPES["rsna"], val=0.2, test=0.2),
    "covidx": replace(SPLIT_RECIPES["covidx"], val=0.2),
    "siim": replace(SPLIT_RECIPES["siim"], val=0.2, test=0.2),
    "object_cxr": replace(SPLIT_RECIPES["object_cxr"], val=0.2),
}


# The smoke suite must run every family on two CPU cores in minutes: segmentation and
# detection use small inputs, and both a 4x narrower head (U-Net decoder channels 64-4 instead
# of 256-16, 3x faster per epoch; YOLOv3 neck and head). The heads still train to
# convergence: every demo unit's best epoch comes before its epoch cap (early stopping fires).
# Segmentation: AdamW lr 3e-3 (the recipe's 5e-4 left the narrow decoder improving at epoch
# 49 of 50), patience 4 (the recipe's 10 is sized for thousands of images) counted on
# improvements of at least 1% of the validation loss, within 100 epochs (a 1% unit trains on 2
# images, one step per epoch, and was still improving at epoch 50); the best decoder is still
# the lowest-loss one. Detection: lr 1e-3 with batches of 4 (1%) / 8 (10%, 100%), so the 3-450
# training images take enough steps per epoch, patience 6 within 100 epochs; while the
# validation mAP ties (typically 0 at 1%), only a validation-loss improvement of at least 1%
# resets the patience (a 1% unit's loss otherwise drifted down to the cap). Linear probes: AdamW
# lr 5e-3 (the recipe's 5e-4 took ~300 steps on a few hundred images and still had its best
# epoch at 50 of 50) with patience counted on improvements of at least 0.5% of the validation
# loss, within 300 epochs (on a briefly pretrained ConVIRT encoder's features the probe's
# validation loss was still falling at epoch 100: best epochs 89-104 of rsna_cls and covidx_cls
# 100%; a probe epoch costs well under a second on the demo). The values are recorded in every
# result (suite.extra).
DEMO_EXTRA = {
    "probe_recipe": {"lr": 5e-3, "max_epochs": 300},
    "probe_min_delta": 0.005,
    "segmentation_recipe": {"decoder_channels": (64, 32, 16, 8, 4), "lr": 3e-3, "max_epochs": 100},
    "segmentation_patience": 4,
    "segmentation_min_delta": 0.01,
    "segmentation_input_size": 64,
    "detection_recipe": {
        "neck_out_channels": (128, 64, 32),
        "head_out_channels": (256, 128, 64),
        "max_epochs": 100,
        "patience": 6,
        "lr_1pct": 1e-3,
        "lr": 1e-3,
        "batch_size_1pct": 4,
        "batch_size": 8,
    },
    "detection_min_delta": 0.01,
}


def _ensure_current_demo_suite(root: Path, progress: bool) -> None:
    """Generate the demo suite under ``root`` unless a complete one of this generator version is there.

    A complete suite is reused with whatever seed, image size and scale it was made with (the
    tests make small ones); one written by an older generator version is redrawn with those
    same parameters, since its pictures are not the ones this version's numbers refer to."""
    from .demo import GENERATOR_VERSION, generate_demo_suite, read_marker

    marker = read_marker(root)  # None when absent or unreadable
    if marker is None:
        generate_demo_suite(root, progress=progress)
    elif marker[0].version != GENERATOR_VERSION:
        old = marker[0]
        print(
            f"demo suite at {root} was drawn by generator version {old.version}; "
            f"redrawing it with version {GENERATOR_VERSION}"
        )
        generate_demo_suite(root, seed=old.seed, image_size=old.image_size, scale=old.scale, progress=progress)


def demo_suite(
    root: Path | None = None, *, train_views: int = 2, generate: bool = True, progress: bool = True
) -> Suite:
    root = Path(root) if root else DEFAULT_CACHE / "demo-suite"
    if generate:
        _ensure_current_demo_suite(root, progress)
    return Suite(
        name="demo",
        comparable=False,
        data_roots=DataRoots(root, {}, "demo suite"),
        split_recipes=dict(DEMO_SPLITS),
        use_committed_manifests=False,
        train_views=train_views,
        resize=96,
        crop=84,
        notes="SMOKE SUITE: synthetic images; numbers are not comparable with published results",
        extra=dict(DEMO_EXTRA),
    )
