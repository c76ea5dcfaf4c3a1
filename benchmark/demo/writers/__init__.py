"""One writer per dataset of the demo suite.

Each dataset module ``plan``s its images first (ids, labels, file formats: cheap, so the
progress bar knows the total) and then ``write``s them: draws every picture, encodes it in
the dataset's official format, writes the official label files, and returns the ground
truth it used (stored in ``<root>/.demo_truth/<dataset>.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import chexpert, covidx, mimic, object_cxr, rsna, siim
from .common import DemoContext


@dataclass(frozen=True)
class DatasetWriter:
    name: str  # the dataset's official folder name under the suite root
    aliases: tuple[str, ...]  # short names accepted by generate_demo_suite(datasets=...)
    plan: Callable[[DemoContext], Sequence]
    write: Callable[[DemoContext, Sequence], dict]
    extra_folders: tuple[str, ...] = ()  # other top-level folders it writes
    count_images: Callable[[Sequence], int] = len  # images in a plan (for the progress bar)

    @property
    def folders(self) -> tuple[str, ...]:
        return (self.name, *self.extra_folders)


WRITERS: tuple[DatasetWriter, ...] = (
    DatasetWriter(chexpert.FOLDER, ("chexpert",), chexpert.plan, chexpert.write),
    DatasetWriter(rsna.FOLDER, ("rsna", "rsna_pneumonia"), rsna.plan, rsna.write),
    DatasetWriter(covidx.FOLDER, ("covidx",), covidx.plan, covidx.write),
    DatasetWriter(siim.FOLDER, ("siim", "siim_acr", "siim-acr"), siim.plan, siim.write),
    DatasetWriter(object_cxr.FOLDER, ("object_cxr", "object-cxr", "objectcxr"), object_cxr.plan, object_cxr.write),
    DatasetWriter(
        mimic.FOLDER,
        ("mimic", "mimic_cxr", "mimic-cxr"),
        mimic.plan,
        mimic.write,
        (mimic.REPORTS_FOLDER,),
        mimic.count_images,
    ),
)

__all__ = ["WRITERS", "DatasetWriter", "DemoContext"]
