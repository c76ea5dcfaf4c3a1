"""Cached fp16 features held in device memory while a unit trains.

The frozen encoder's outputs are cached once (fp16, in memory or memmapped on disk). A head
then reads them every epoch; at the paper's sizes that is tens of GB per epoch (RSNA
detection train maps ~22 GB, RSNA segmentation validation pyramids ~25 GB), which a GPU can
hold. Rows are copied to the device once per unit when they fit the budget, and batches
are gathered there. The values are the same fp16 numbers either way, so results are
identical (tests/test_detection.py, tests/test_segmentation.py)."""

from __future__ import annotations

import os

import numpy as np
import torch

ENV_BUDGET = "MEDVLP_RESIDENT_GB"
CHUNK_BYTES = 256 * 2**20  # host-side copy granularity


def resident_budget(device: torch.device) -> int:
    """Bytes of cached features one store may keep on ``device``: ``$MEDVLP_RESIDENT_GB``, else
    half of the free GPU memory on CUDA (memory PyTorch cached from earlier units counts as
    free; checked per store, so the stores of a unit share it) and 2 GiB on CPU (where a
    memmap is page-cached anyway)."""
    if os.environ.get(ENV_BUDGET):
        return int(float(os.environ[ENV_BUDGET]) * 2**30)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        reusable = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(0.5 * (free + reusable))
    return 2 * 2**30


def rows_to_device(array: np.ndarray, rows, device: torch.device) -> torch.Tensor:
    """``array[rows]`` (fp16, any trailing shape; rows=None: all) as one fp16 tensor on ``device``,
    copied in chunks so host memory stays small."""
    rows = np.arange(len(array)) if rows is None else np.asarray(rows, dtype=np.int64)
    row_bytes = int(np.prod(array.shape[1:])) * 2
    out = torch.empty((len(rows), *array.shape[1:]), dtype=torch.float16, device=device)
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    for start in range(0, len(rows), step):
        chunk = np.ascontiguousarray(array[rows[start : start + step]], dtype=np.float16)
        out[start : start + len(chunk)].copy_(torch.from_numpy(chunk))
    return out


def fits(n_bytes: int, device: torch.device) -> bool:
    return 0 < n_bytes <= resident_budget(device)
