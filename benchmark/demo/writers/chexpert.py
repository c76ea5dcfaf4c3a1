"""CheXpert-v1.0-small in its official layout (Stanford ML Group release)::

    CheXpert-v1.0-small/
      train.csv      Path,Sex,Age,Frontal/Lateral,AP/PA,<14 labels>; labels 1.0 / 0.0 / -1.0 / blank
      valid.csv      same header; labels 0.0 / 1.0 only
      train/patient00001/study1/view1_frontal.jpg   (+ view2_lateral.jpg for some studies)
      valid/patient64541/study1/view1_frontal.jpg

``Path`` values start with the release folder (``CheXpert-v1.0-small/train/...``). Labels are
per study (a lateral row repeats its study's labels). The 5 competition labels are drawn:
1.0 = clearly, -1.0 (uncertain) = faintly, 0.0 / blank = not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..drawing import Finding, draw_radiograph
from ..files import csv_text, jpeg_bytes, write_atomic
from .common import DemoContext, label_text, quota_choice, radiograph_truth, sample_sex_age

FOLDER = "CheXpert-v1.0-small"
LABELS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS)
# competition label -> drawn finding, and the share of studies where it is positive (1.0)
COMPETITION_FINDINGS = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Consolidation": "consolidation",
    "Edema": "edema",
    "Pleural Effusion": "effusion",
}
POSITIVE_SHARE = {
    "Atelectasis": 0.20,
    "Cardiomegaly": 0.17,
    "Consolidation": 0.15,
    "Edema": 0.22,
    "Pleural Effusion": 0.27,
}
UNCERTAIN_SHARE = 0.05  # train only: drawn faintly
EXPLICIT_NEGATIVE_SHARE = 0.15  # train: 0.0 (the rest is blank = not mentioned)
LATERAL_SHARE = 0.10
SECOND_STUDY_SHARE = 0.12
FIRST_VALID_PATIENT = 64541
TRAIN_PATIENTS, VALID_PATIENTS = 800, 80


@dataclass(frozen=True)
class Study:
    split: str  # "train" or "valid"
    patient: int
    number: int
    sex: str
    age: int
    ap_pa: str
    labels: dict[str, float | None]  # all 14 label columns
    has_lateral: bool


@dataclass(frozen=True)
class ChexpertImage:
    study: Study
    view: str  # "frontal" or "lateral"

    @property
    def path(self) -> str:
        """The official ``Path`` value (relative to the folder holding CheXpert-v1.0-small)."""
        s = self.study
        name = "view1_frontal.jpg" if self.view == "frontal" else "view2_lateral.jpg"
        return f"{FOLDER}/{s.split}/patient{s.patient:05d}/study{s.number}/{name}"

    def row(self) -> list[str]:
        s = self.study
        ap_pa = s.ap_pa if self.view == "frontal" else ""
        return [self.path, s.sex, str(s.age), self.view.capitalize(), ap_pa, *(label_text(s.labels[c]) for c in LABELS)]


def _competition_states(rng: np.random.Generator, n: int, valid: bool) -> dict[str, list[float | None]]:
    states = {}
    for label, share in POSITIVE_SHARE.items():
        if valid:
            shares = {1.0: share, 0.0: 1.0 - share}
        else:
            shares = {
                1.0: share,
                -1.0: UNCERTAIN_SHARE,
                0.0: EXPLICIT_NEGATIVE_SHARE,
                None: 1.0 - share - UNCERTAIN_SHARE - EXPLICIT_NEGATIVE_SHARE,
            }
        states[label] = quota_choice(rng, n, shares)
    return states


def _other_labels(rng: np.random.Generator, labels: dict[str, float | None]) -> dict[str, float | None]:
    """The 9 non-competition columns: derived from the drawn ones or random (not drawn)."""
    u = rng.uniform(size=8)
    cardiomegaly = labels["Cardiomegaly"]
    other: dict[str, float | None] = {
        "Enlarged Cardiomediastinum": 1.0 if cardiomegaly == 1.0 and u[0] < 0.5 else (0.0 if u[0] > 0.95 else None),
        "Lung Opacity": 1.0 if any(labels[c] == 1.0 for c in ("Atelectasis", "Consolidation", "Edema")) else None,
        "Lung Lesion": 0.0 if u[1] < 0.03 else None,
        "Pneumonia": -1.0 if labels["Consolidation"] == 1.0 and u[2] < 0.3 else (0.0 if u[2] > 0.97 else None),
        "Pneumothorax": 0.0 if u[3] < 0.25 else None,
        "Pleural Other": None,
        "Fracture": 0.0 if u[4] < 0.02 else None,
        "Support Devices": 1.0 if u[5] < 0.3 else None,
    }
    everything = {**labels, **other}
    findings = [v for k, v in everything.items() if k != "Support Devices"]
    other["No Finding"] = 1.0 if all(v not in (1.0, -1.0) for v in findings) else None
    return other


def _plan_split(rng: np.random.Generator, split: str, patients: int, first_patient: int) -> list[ChexpertImage]:
    valid = split == "valid"
    study_counts = (
        [1] * patients
        if valid
        else [
            2 if two else 1
            for two in quota_choice(rng, patients, {True: SECOND_STUDY_SHARE, False: 1 - SECOND_STUDY_SHARE})
        ]
    )
    keys = [(first_patient + p, s + 1) for p, count in enumerate(study_counts) for s in range(count)]
    states = _competition_states(rng, len(keys), valid)
    laterals = quota_choice(rng, len(keys), {True: LATERAL_SHARE, False: 1 - LATERAL_SHARE})
    demographics = {patient: sample_sex_age(rng) for patient, _ in keys}
    images = []
    for i, (patient, number) in enumerate(keys):
        labels = {label: states[label][i] for label in POSITIVE_SHARE}
        labels.update(_other_labels(rng, labels))
        if valid:  # valid.csv has no blanks and no uncertain labels
            labels = {k: 1.0 if v == 1.0 else 0.0 for k, v in labels.items()}
        sex, age = demographics[patient]
        study = Study(
            split, patient, number, sex, age + number - 1, "AP" if rng.uniform() < 0.7 else "PA", labels, laterals[i]
        )
        images.append(ChexpertImage(study, "frontal"))
        if study.has_lateral:
            images.append(ChexpertImage(study, "lateral"))
    return images


def plan(ctx: DemoContext) -> list[ChexpertImage]:
    rng = ctx.rng(FOLDER)
    train = _plan_split(rng, "train", ctx.count(TRAIN_PATIENTS, 20), 1)
    valid = _plan_split(rng, "valid", ctx.count(VALID_PATIENTS, 10), FIRST_VALID_PATIENT)
    return train + valid


def _findings(rng: np.random.Generator, labels: dict[str, float | None]) -> list[Finding]:
    findings = []
    for label, name in COMPETITION_FINDINGS.items():
        value = labels[label]
        if value == 1.0:
            severity = rng.uniform(0.8, 1.0)
        elif value == -1.0:
            severity = rng.uniform(0.3, 0.45)
        else:
            continue
        extent = 2 if name == "effusion" and rng.uniform() < 0.4 else 1
        findings.append(Finding(name, severity, extent))
    return findings


def write(ctx: DemoContext, images: list[ChexpertImage]) -> dict:
    truth = {}
    for index, image in enumerate(images):
        rng = ctx.image_rng(FOLDER, index)
        findings = _findings(rng, image.study.labels)
        picture = draw_radiograph(rng, ctx.image_size, findings, view=image.view)
        write_atomic(ctx.root / image.path, jpeg_bytes(picture.pixels))
        truth[image.path] = {
            "split": image.study.split,
            "view": image.view,
            "labels": {label: image.study.labels[label] for label in COMPETITION_FINDINGS},
            "severity": {f.name: round(f.severity, 3) for f in findings},
            **radiograph_truth(picture),
        }
        ctx.advance(1)
    for split, name in (("train", "train.csv"), ("valid", "valid.csv")):
        rows = [image.row() for image in images if image.study.split == split]
        write_atomic(ctx.root / FOLDER / name, csv_text(HEADER, rows))
    return {"dataset": FOLDER, "competition_labels": list(COMPETITION_FINDINGS), "images": truth}
