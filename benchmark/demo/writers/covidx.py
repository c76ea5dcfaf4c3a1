"""COVIDx (COVID-Net, CXR-3 style) in its official layout::

    COVIDx/
      train.txt     space-separated, NO header: patient_id filename label source
      test.txt      (label: normal / pneumonia / COVID-19; source: rsna, cohen, sirm, ricord, actmed)
      train/<filename>
      test/<filename>

Images are a mix of PNG and JPEG as in the real release, some stored as RGB and some as
16-bit grey PNG (mode I;16) to exercise readers. Pneumonia = focal opaque blobs; COVID-19 =
bilateral peripheral ground-glass haze; normal = neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..drawing import Finding, draw_radiograph
from ..files import raster_bytes, write_atomic
from .common import DemoContext, quota_choice, radiograph_truth, uuid_like

FOLDER = "COVIDx"
CLASSES = ("normal", "pneumonia", "COVID-19")
SOURCES = {
    "normal": {"rsna": 1.0},
    "pneumonia": {"rsna": 0.8, "cohen": 0.2},
    "COVID-19": {"cohen": 0.3, "sirm": 0.15, "ricord": 0.4, "actmed": 0.15},
}
# (suffix, stored mode) -> share of the images
FORMATS = {
    (".png", "L"): 0.50,
    (".png", "RGB"): 0.12,
    (".png", "I;16"): 0.13,
    (".jpg", "L"): 0.20,
    (".jpg", "RGB"): 0.05,
}
TRAIN_IMAGES, TEST_IMAGES_PER_CLASS = 600, 30


@dataclass(frozen=True)
class CovidxImage:
    split: str  # "train" or "test"
    patient_id: str
    filename: str
    label: str
    source: str
    mode: str

    def line(self) -> str:
        return f"{self.patient_id} {self.filename} {self.label} {self.source}\n"


class _Names:
    """Unique, source-styled patient ids and file stems (like the real release's)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set()
        self.counter = 0

    def __call__(self, source: str, label: str) -> tuple[str, str]:
        while True:
            patient, stem = self._candidate(source, label)
            if stem not in self.used:
                self.used.add(stem)
                return patient, stem

    def _candidate(self, source: str, label: str) -> tuple[str, str]:
        rng = self.rng
        self.counter += 1
        if source == "rsna":
            patient = uuid_like(rng)
            return patient, patient
        if source == "cohen":
            kind = "covid-19-pneumonia" if label == "COVID-19" else "streptococcus-pneumoniae-pneumonia"
            return str(self.counter), f"{kind}-{self.counter}-{'PA' if rng.uniform() < 0.6 else 'AP'}"
        if source == "sirm":
            return f"sirm-{self.counter}", f"COVID-19({self.counter})"
        if source == "ricord":
            patient = f"{rng.integers(100000, 999999)}-{rng.integers(0, 999999):06d}"
            return patient, f"MIDRC-RICORD-1C-{patient}-{rng.integers(10000, 99999)}-0"
        patient = f"COVID-{rng.bytes(3).hex()}"
        return patient, patient


def _plan_split(rng, names: _Names, split: str, labels: list[str]) -> list[tuple[str, str, str, str, str]]:
    sources = {label: iter(quota_choice(rng, labels.count(label), SOURCES[label])) for label in CLASSES}
    out = []
    for label in labels:
        source = next(sources[label])
        patient, stem = names(source, label)
        out.append((split, patient, stem, label, source))
    return out


def plan(ctx: DemoContext) -> list[CovidxImage]:
    rng = ctx.rng(FOLDER)
    names = _Names(rng)
    train_labels = quota_choice(rng, ctx.count(TRAIN_IMAGES, 9), {label: 1.0 for label in CLASSES})
    per_class = ctx.count(TEST_IMAGES_PER_CLASS, 2)
    test_labels = [CLASSES[i] for i in rng.permutation(np.repeat(np.arange(3), per_class))]
    drafts = _plan_split(rng, names, "train", train_labels) + _plan_split(rng, names, "test", test_labels)
    formats = quota_choice(rng, len(drafts), FORMATS)
    return [
        CovidxImage(split, patient, stem + suffix, label, source, mode)
        for (split, patient, stem, label, source), (suffix, mode) in zip(drafts, formats)
    ]


def _findings(rng, label: str) -> list[Finding]:
    if label == "pneumonia":
        return [Finding("pneumonia", rng.uniform(0.7, 1.0), 2 if rng.uniform() < 0.35 else 1)]
    if label == "COVID-19":
        return [Finding("covid", rng.uniform(0.7, 1.0))]
    return []


def write(ctx: DemoContext, images: list[CovidxImage]) -> dict:
    truth = {}
    for index, image in enumerate(images):
        rng = ctx.image_rng(FOLDER, index)
        picture = draw_radiograph(rng, ctx.image_size, _findings(rng, image.label))
        suffix = "." + image.filename.rsplit(".", 1)[1]
        write_atomic(ctx.root / FOLDER / image.split / image.filename, raster_bytes(picture.pixels, suffix, image.mode))
        truth[f"{image.split}/{image.filename}"] = {
            "label": image.label,
            "mode": image.mode,
            **radiograph_truth(picture),
        }
        ctx.advance(1)
    for split in ("train", "test"):
        text = "".join(image.line() for image in images if image.split == split)
        write_atomic(ctx.root / FOLDER / f"{split}.txt", text)
    return {"dataset": FOLDER, "images": truth}
