"""What trivial segmentation heads score on the paper suite's REAL test sets.

A head that predicts an empty mask everywhere, or the whole image everywhere, needs no
encoder: its Dice under every rule follows from the test set's ground truth alone. These
floors are computed from the committed split manifests and the official label files that
torchxrayvision ships (the same files ``tasks/build_manifests.py`` reads), so the paper
leaderboard shows them even before any submission exists.

Masks are drawn in the official 1024 x 1024 pixel space (every SIIM-ACR and RSNA image has
that size) and brought to the task's input size the way the segmentation family brings them
(area resampling, then >= 0.5), so the floors count pixels exactly as a unit's metric does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .masks import record_mask
from .seg_metrics import trivial_floors

OFFICIAL_SIDE = 1024


@lru_cache(maxsize=8)
def test_true_pixels(
    dataset: str, mask_source: str, input_size: int, geometry: str = "stretch"
) -> tuple[tuple[str, ...], np.ndarray] | None:
    """(test ids, positive pixels per test image at ``input_size``, the mask made the input
    square by ``geometry`` as the segmentation family does) of a committed manifest, or None
    when the label files are not installed."""
    from tasks.build_manifests import SOURCES, txrv_data_dir

    import cv2

    from .preprocess import fit_square
    from .splits import read_manifest
    from .suites import REPO_MANIFESTS

    if dataset not in SOURCES:
        return None
    try:
        data = txrv_data_dir()
    except SystemExit:
        return None
    records = SOURCES[dataset][0](data).set_index("image_id", drop=False)
    ids = read_manifest(REPO_MANIFESTS / f"{dataset}.csv.gz", dataset).ids("test")
    true = np.zeros(len(ids), dtype=np.int64)
    for k, image_id in enumerate(ids):
        mask = record_mask(mask_source, records.loc[image_id], OFFICIAL_SIDE, OFFICIAL_SIDE)
        if mask.any():
            true[k] = int(
                (
                    fit_square(mask.astype(np.float32), input_size, geometry, stretch_interpolation=cv2.INTER_AREA)
                    >= 0.5
                ).sum()
            )
    return tuple(ids), true


def paper_floors(task) -> dict[str, dict[str, float]] | None:
    """``{"predict_nothing": {"dice": ..., "dice_positive": ..., "specificity": ...},
    "predict_everything": {...}}`` on the task's real test set, or None (label files absent)."""
    size = int(task.recipe.input_size)
    found = test_true_pixels(task.dataset, task.mask_source, size, task.recipe.geometry)
    if found is None:
        return None
    _, true = found
    return trivial_floors(true, size * size)
