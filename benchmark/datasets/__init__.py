"""Dataset adapters for the official layouts, by dataset name.

Each module of this package (``base`` is the shared base class) is one adapter and names it
in ``DATASET = <DatasetAdapter subclass>``; adding a dataset is adding one module
(see :mod:`benchmark.plugins`).
"""

from __future__ import annotations

import sys

from ..plugins import discover
from .base import DatasetAdapter

DATASETS: dict[str, type[DatasetAdapter]] = discover(
    sys.modules[__name__],
    "DATASET",
    key=lambda adapter: adapter.name,
    check=lambda obj: isinstance(obj, type) and issubclass(obj, DatasetAdapter),
    skip=("base",),
)


def get_dataset(name: str) -> type[DatasetAdapter]:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None
