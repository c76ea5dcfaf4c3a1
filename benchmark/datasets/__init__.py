"""Dataset adapters for the official layouts, by dataset name."""

from __future__ import annotations

from .base import DatasetAdapter
from .chexpert import CheXpert
from .covidx import COVIDx
from .rsna import RSNAPneumonia
from .object_cxr import ObjectCXR  # [det]

DATASETS: dict[str, type[DatasetAdapter]] = {
    adapter.name: adapter for adapter in (CheXpert, RSNAPneumonia, COVIDx)
}
DATASETS[ObjectCXR.name] = ObjectCXR  # [det]
from .siim import SIIMPneumothorax  # noqa: E402  [seg]
DATASETS[SIIMPneumothorax.name] = SIIMPneumothorax  # [seg]


def get_dataset(name: str) -> type[DatasetAdapter]:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None
