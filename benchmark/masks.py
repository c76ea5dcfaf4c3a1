"""Ground-truth masks of the segmentation tasks, in an image's own pixel space.

SIIM: the union of the image's run-length-encoded rows (:func:`benchmark.datasets.siim.siim_mask`).
RSNA: the union of the image's filled (x, y, width, height) boxes. The segmentation family
and the leaderboard's trivial-head floors draw masks through this one module.
"""

from __future__ import annotations

import math

import numpy as np


def boxes_mask(boxes, height: int, width: int) -> np.ndarray:
    """Union of filled (x, y, width, height) boxes in pixel coordinates."""
    mask = np.zeros((height, width), dtype=bool)
    for x, y, w, h in boxes or ():
        x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
        x1, y1 = min(width, int(math.ceil(x + w))), min(height, int(math.ceil(y + h)))
        mask[y0:y1, x0:x1] = True
    return mask


def record_mask(mask_source: str, record, height: int, width: int) -> np.ndarray:
    """A record's full-resolution mask: ``mask_source`` "rle" (SIIM) or "boxes" (RSNA)."""
    if mask_source == "rle":
        from .datasets.siim import siim_mask

        return siim_mask(record["rle"], height, width)
    return boxes_mask(record["boxes"], height, width)
