"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2) in its official layout::

    rsna-pneumonia-detection-challenge/
      stage_2_train_labels.csv        patientId,x,y,width,height,Target   (ONE ROW PER BOX;
                                      a negative patient: one row, empty box, Target 0)
      stage_2_detailed_class_info.csv patientId,class   (one row per label row: "Lung Opacity",
                                      "Normal" or "No Lung Opacity / Not Normal")
      stage_2_train_images/<patientId>.dcm

DICOMs: Secondary Capture, Modality CR, 8-bit MONOCHROME2, mostly uncompressed Explicit VR
Little Endian; some are MONOCHROME1 (stored inverted) and some JPEG Baseline, to exercise
readers. Images are ``2 * image_size`` square; boxes are pixel coordinates of that image and
are the boxes of the drawn opacities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydicom.uid import generate_uid

from ..drawing import Finding, draw_radiograph
from ..files import DEMO_UID_ROOT, csv_text, dicom_bytes, write_atomic
from .common import (
    DemoContext,
    block_means,
    kaggle_dicom_attributes,
    quota_choice,
    radiograph_truth,
    sample_sex_age,
    uuid_like,
)

FOLDER = "rsna-pneumonia-detection-challenge"
LABELS_FILE = "stage_2_train_labels.csv"
CLASS_FILE = "stage_2_detailed_class_info.csv"
IMAGES_DIR = "stage_2_train_images"
LABELS_HEADER = ("patientId", "x", "y", "width", "height", "Target")
CLASS_HEADER = ("patientId", "class")
OPACITY, NORMAL, NOT_NORMAL = "Lung Opacity", "Normal", "No Lung Opacity / Not Normal"
CLASS_SHARES = {OPACITY: 0.30, NORMAL: 0.40, NOT_NORMAL: 0.30}
PATIENTS = 700


@dataclass(frozen=True)
class RsnaPatient:
    patient_id: str
    category: str
    opacities: int  # drawn opacities (= boxes) for "Lung Opacity", else 0
    view: str
    sex: str
    age: int
    monochrome1: bool
    jpeg: bool


def plan(ctx: DemoContext) -> list[RsnaPatient]:
    rng = ctx.rng(FOLDER)
    n = ctx.count(PATIENTS, 10)
    categories = quota_choice(rng, n, CLASS_SHARES)
    opacity_counts = iter(quota_choice(rng, categories.count(OPACITY), {1: 0.55, 2: 0.45}))
    monochrome1 = quota_choice(rng, n, {True: 0.2, False: 0.8})
    jpeg = quota_choice(rng, n, {True: 0.1, False: 0.9})
    patients = []
    for i, category in enumerate(categories):
        sex, age = sample_sex_age(rng)
        view = "AP" if rng.uniform() < (0.7 if category == OPACITY else 0.45) else "PA"
        opacities = next(opacity_counts) if category == OPACITY else 0
        patients.append(RsnaPatient(uuid_like(rng), category, opacities, view, sex, age, monochrome1[i], jpeg[i]))
    return patients


def _findings(rng, patient: RsnaPatient) -> list[Finding]:
    if patient.category == OPACITY:
        return [Finding("pneumonia", rng.uniform(0.75, 1.0), patient.opacities)]
    if patient.category == NOT_NORMAL:
        return [Finding("cardiomegaly", rng.uniform(0.6, 1.0))]
    return []


def _uid(ctx: DemoContext, patient_id: str, kind: str) -> str:
    return generate_uid(prefix=DEMO_UID_ROOT, entropy_srcs=[str(ctx.seed), FOLDER, patient_id, kind])


def write(ctx: DemoContext, patients: list[RsnaPatient]) -> dict:
    size = 2 * ctx.image_size
    label_rows, class_rows, truth = [], [], {}
    for index, patient in enumerate(patients):
        rng = ctx.image_rng(FOLDER, index)
        picture = draw_radiograph(rng, size, _findings(rng, patient))
        boxes = picture.opacity_boxes()
        if patient.category == OPACITY and len(boxes) != patient.opacities:
            raise RuntimeError(f"drew {len(boxes)} opacity boxes for {patient.patient_id}, planned {patient.opacities}")
        data = dicom_bytes(
            picture.pixels,
            sop_instance_uid=_uid(ctx, patient.patient_id, "instance"),
            study_instance_uid=_uid(ctx, patient.patient_id, "study"),
            series_instance_uid=_uid(ctx, patient.patient_id, "series"),
            attributes=kaggle_dicom_attributes(patient.patient_id, patient.sex, patient.age, patient.view, size),
            monochrome1=patient.monochrome1,
            jpeg=patient.jpeg,
        )
        write_atomic(ctx.root / FOLDER / IMAGES_DIR / f"{patient.patient_id}.dcm", data)
        rows = [[patient.patient_id, f"{x:.1f}", f"{y:.1f}", f"{w:.1f}", f"{h:.1f}", "1"] for x, y, w, h in boxes]
        rows = rows or [[patient.patient_id, "", "", "", "", "0"]]
        label_rows += rows
        class_rows += [[patient.patient_id, patient.category]] * len(rows)
        truth[patient.patient_id] = {
            "class": patient.category,
            "target": int(bool(boxes)),
            "boxes": [list(b) for b in boxes],
            "photometric": "MONOCHROME1" if patient.monochrome1 else "MONOCHROME2",
            "jpeg": patient.jpeg,
            "pixels_sha256": hashlib.sha256(picture.pixels.tobytes()).hexdigest(),
            "block_means": block_means(picture.pixels),
            **radiograph_truth(picture),
        }
        ctx.advance(1)
    write_atomic(ctx.root / FOLDER / LABELS_FILE, csv_text(LABELS_HEADER, label_rows))
    write_atomic(ctx.root / FOLDER / CLASS_FILE, csv_text(CLASS_HEADER, class_rows))
    return {"dataset": FOLDER, "image_size": size, "patients": truth}
