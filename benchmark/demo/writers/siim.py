"""SIIM-ACR Pneumothorax Segmentation (Kaggle) in its official layout::

    siim-acr-pneumothorax/
      train-rle.csv      header "ImageId, EncodedPixels" (leading space), values
                         "<ImageId>, -1" (no pneumothorax) or "<ImageId>, 123 45 678 9 ..."
      dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<ImageId>.dcm

The RLE is the competition's relative, column-major one (see ``benchmark.demo.rle``); an
image with several disjoint pneumothorax regions has one row per region (the mask is the
union). DICOMs are JPEG Baseline (1.2.840.10008.1.2.4.50), 8-bit MONOCHROME2, as in the real
release; images are ``2 * image_size`` square and the RLE refers to that size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..drawing import Finding, draw_radiograph
from ..files import dicom_bytes, write_atomic
from ..rle import EMPTY, rle_encode
from .common import (
    DemoContext,
    block_means,
    kaggle_dicom_attributes,
    quota_choice,
    radiograph_truth,
    sample_sex_age,
    uuid_like,
)

FOLDER = "siim-acr-pneumothorax"
RLE_FILE = "train-rle.csv"
RLE_HEADER = "ImageId, EncodedPixels"
IMAGES_DIR = "dicom-images-train"
UID_STEM = "1.2.276.0.7230010.3.1"  # the anonymiser's root in the real release
IMAGES = 400


@dataclass(frozen=True)
class SiimImage:
    image_id: str  # = SOPInstanceUID
    study_uid: str
    series_uid: str
    patient_id: str
    sex: str
    age: int
    view: str
    regions: int  # drawn pneumothorax regions (0 = negative)

    @property
    def path(self) -> str:
        return f"{FOLDER}/{IMAGES_DIR}/{self.study_uid}/{self.series_uid}/{self.image_id}.dcm"


def _uids(number: int, second: int, last: int) -> tuple[str, str, str]:
    """(image, study, series) UIDs shaped like the release's ``...4.8323329.5597.1517875188.959090``."""
    tail = f"8323329.{number}.1517875{second:03d}"
    return f"{UID_STEM}.4.{tail}.{last}", f"{UID_STEM}.2.{tail}.{last - 1}", f"{UID_STEM}.3.{tail}.{last - 2}"


def plan(ctx: DemoContext) -> list[SiimImage]:
    rng = ctx.rng(FOLDER)
    n = ctx.count(IMAGES, 10)
    positive = quota_choice(rng, n, {True: 0.3, False: 0.7})
    regions = iter(quota_choice(rng, sum(positive), {1: 0.75, 2: 0.25}))
    numbers = rng.choice(np.arange(1000, 14000), size=n, replace=False)
    images = []
    for i in range(n):
        image_id, study_uid, series_uid = _uids(
            int(numbers[i]), int(rng.integers(150, 250)), int(rng.integers(100000, 999999))
        )
        sex, age = sample_sex_age(rng)
        view = "PA" if rng.uniform() < 0.6 else "AP"
        images.append(
            SiimImage(
                image_id, study_uid, series_uid, uuid_like(rng), sex, age, view, next(regions) if positive[i] else 0
            )
        )
    return images


def mask_sha256(mask: np.ndarray) -> str:
    """Hash of a bool mask (row-major, bit-packed): how the truth file pins a mask."""
    return hashlib.sha256(np.packbits(np.asarray(mask, dtype=bool)).tobytes()).hexdigest()


def write(ctx: DemoContext, images: list[SiimImage]) -> dict:
    size = 2 * ctx.image_size
    lines, truth = [RLE_HEADER], {}
    for index, image in enumerate(images):
        rng = ctx.image_rng(FOLDER, index)
        findings = [Finding("pneumothorax", rng.uniform(0.6, 1.0), image.regions)] if image.regions else []
        picture = draw_radiograph(rng, size, findings)
        data = dicom_bytes(
            picture.pixels,
            sop_instance_uid=image.image_id,
            study_instance_uid=image.study_uid,
            series_instance_uid=image.series_uid,
            attributes=kaggle_dicom_attributes(image.patient_id, image.sex, image.age, image.view, size),
            jpeg=True,
        )
        write_atomic(ctx.root / image.path, data)
        encodings = [rle_encode(mask) for mask in picture.pneumothorax_masks] or [EMPTY]
        lines += [f"{image.image_id}, {encoding}" for encoding in encodings]
        union = np.zeros((size, size), dtype=bool)
        for mask in picture.pneumothorax_masks:
            union |= mask
        rows, cols = np.nonzero(union)
        truth[image.image_id] = {
            "path": image.path,
            "rows": len(encodings),
            "mask_sha256": mask_sha256(union),
            "mask_pixels": int(union.sum()),
            "mask_box": [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())] if rows.size else None,
            "block_means": block_means(picture.pixels),
            **radiograph_truth(picture),
        }
        ctx.advance(1)
    write_atomic(ctx.root / FOLDER / RLE_FILE, "\n".join(lines) + "\n")
    return {"dataset": FOLDER, "image_size": size, "images": truth}
