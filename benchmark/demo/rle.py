"""The SIIM-ACR Pneumothorax run-length encoding (Kaggle ``train-rle.csv``).

The official encoding (Kaggle's ``mask_functions.py``) differs from the usual Kaggle RLE:

- pixels are numbered in COLUMN-major order (down the first column, then the next; i.e. the
  row-major order of the transposed mask), starting at 0;
- the encoding is RELATIVE: each run is ``start length`` where ``start`` counts the pixels
  between the end of the previous run (or the first pixel) and the run's first pixel;
- an empty mask is written ``-1``.

Example, a 3 x 3 mask with pixels (row 1, col 0) and (row 1, col 1) set: column-major
positions 1 and 4, two runs of length 1: ``"1 1 2 1"``.
"""

from __future__ import annotations

import numpy as np

EMPTY = "-1"


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero = inside) as SIIM-ACR relative column-major RLE."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    flat = mask.astype(bool).T.ravel()
    edges = np.flatnonzero(np.diff(np.concatenate(([False], flat, [False])).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    if starts.size == 0:
        return EMPTY
    previous_ends = np.concatenate(([0], ends[:-1]))
    pairs = np.stack([starts - previous_ends, ends - starts], axis=1).ravel()
    return " ".join(str(int(v)) for v in pairs)


def rle_decode(rle: str, height: int, width: int) -> np.ndarray:
    """Decode SIIM-ACR relative column-major RLE into a ``(height, width)`` bool mask.

    ``-1`` (with or without surrounding spaces) or an empty string decodes to an empty mask.
    """
    text = str(rle).strip()
    if text in ("", EMPTY):
        return np.zeros((height, width), dtype=bool)
    values = np.array(text.split(), dtype=np.int64)
    if values.size % 2 or (values < 0).any():
        raise ValueError(f"not a SIIM run-length encoding: {text[:60]!r}")
    relative_starts, lengths = values[0::2], values[1::2]
    # absolute start of run i = sum of relative starts up to i + lengths of the runs before it
    starts = np.cumsum(relative_starts) + np.concatenate(([0], np.cumsum(lengths)[:-1]))
    ends = starts + lengths
    total = height * width
    if ends[-1] > total:
        raise ValueError(f"run-length encoding reaches pixel {ends[-1]} of a {height}x{width} mask")
    change = np.zeros(total + 1, dtype=np.int32)
    np.add.at(change, starts, 1)
    np.add.at(change, ends, -1)
    flat = np.cumsum(change[:-1]) > 0
    return flat.reshape(width, height).T.copy()
