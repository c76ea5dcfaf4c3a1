"""MIMIC-CXR-JPG 2.0.0 (PhysioNet) in its official layout, with the MIMIC-CXR 2.0.0 reports::

    mimic-cxr-jpg/2.0.0/
      mimic-cxr-2.0.0-metadata.csv.gz  dicom_id,subject_id,study_id,PerformedProcedureStepDescription,
                                       ViewPosition,Rows,Columns,StudyDate,StudyTime,
                                       ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,
                                       PatientOrientationCodeSequence_CodeMeaning
      mimic-cxr-2.0.0-split.csv.gz     dicom_id,study_id,subject_id,split   (train / validate / test)
      mimic-cxr-2.0.0-chexpert.csv.gz  subject_id,study_id,<14 CheXpert labels, alphabetical>
      files/p10/p10000032/s50414267/<dicom_id>.jpg
    mimic-cxr/2.0.0/files/p10/p10000032/s50414267.txt   (the study's free-text report)

The report describes exactly what is drawn (side, size; "possible ..." for faint findings);
the CheXpert label file is what a labeler reads from it (1.0 stated, -1.0 uncertain, 0.0
negated, blank not mentioned). Splits are per subject. Some studies add a lateral view;
some reports lack FINDINGS or have a one-line IMPRESSION.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np

from ..drawing import Finding, Radiograph, draw_radiograph
from ..files import csv_text, gzip_bytes, jpeg_bytes, write_atomic
from .common import DemoContext, hex_groups, label_text, quota_choice, radiograph_truth

FOLDER = "mimic-cxr-jpg"
REPORTS_FOLDER = "mimic-cxr"
VERSION = "2.0.0"
METADATA_HEADER = (
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_HEADER = ("dicom_id", "study_id", "subject_id", "split")
LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
CHEXPERT_HEADER = ("subject_id", "study_id", *LABELS)
# drawn finding -> (CheXpert label, share of studies where it is stated)
FINDING_LABELS = {
    "cardiomegaly": ("Cardiomegaly", 0.20),
    "effusion": ("Pleural Effusion", 0.20),
    "atelectasis": ("Atelectasis", 0.15),
    "consolidation": ("Consolidation", 0.10),
    "edema": ("Edema", 0.15),
    "pneumonia": ("Pneumonia", 0.08),
    "pneumothorax": ("Pneumothorax", 0.06),
}
UNCERTAIN_SHARE = 0.04
REPORT_STYLES = {"full": 0.8, "no_findings_section": 0.1, "short_impression": 0.1}
SPLIT_SHARES = {"train": 0.85, "validate": 0.05, "test": 0.10}
VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}
STUDIES = 200


@dataclass(frozen=True)
class MimicStudy:
    subject_id: int
    study_id: int
    split: str
    states: dict[str, str]  # finding -> "stated" / "uncertain" / "absent"
    frontal_view: str  # PA or AP
    dicom_ids: tuple[str, ...]  # frontal first, then the lateral if any
    study_date: str
    study_time: str
    report_style: str
    age: int
    sex: str
    mentions_negatives: dict[str, bool] = field(default_factory=dict)

    @property
    def views(self) -> tuple[str, ...]:
        return (self.frontal_view, "LATERAL")[: len(self.dicom_ids)]

    @property
    def relative_dir(self) -> str:
        """``files/p10/p10000032/s50414267`` (``p10`` = first 3 characters of ``p10000032``)."""
        subject = f"p{self.subject_id}"
        return f"files/{subject[:3]}/{subject}/s{self.study_id}"

    def image_path(self, dicom_id: str) -> str:
        return f"{FOLDER}/{VERSION}/{self.relative_dir}/{dicom_id}.jpg"

    @property
    def report_path(self) -> str:
        return f"{REPORTS_FOLDER}/{VERSION}/{self.relative_dir}.txt"

    @property
    def procedure(self) -> str:
        return "CHEST (PORTABLE AP)" if self.frontal_view == "AP" else "CHEST (PA AND LAT)"


def _subjects(rng: np.random.Generator, n_studies: int) -> list[int]:
    """The subject of each study: every subject has at least one study, some several."""
    n_subjects = max(3, int(round(n_studies * 0.6)))
    ids = rng.choice(np.arange(10_000_000, 20_000_000), size=n_subjects, replace=False)
    owners = np.concatenate([np.arange(n_subjects), rng.integers(0, n_subjects, n_studies - n_subjects)])
    return sorted(int(ids[i]) for i in owners)


def plan(ctx: DemoContext) -> list[MimicStudy]:
    rng = ctx.rng(FOLDER)
    n = ctx.count(STUDIES, 10)
    subjects = _subjects(rng, n)
    unique_subjects = sorted(set(subjects))
    split_of = dict(zip(unique_subjects, quota_choice(rng, len(unique_subjects), SPLIT_SHARES)))
    study_ids = rng.choice(np.arange(50_000_000, 60_000_000), size=n, replace=False)
    states = {
        name: quota_choice(
            rng, n, {"stated": share, "uncertain": UNCERTAIN_SHARE, "absent": 1 - share - UNCERTAIN_SHARE}
        )
        for name, (_, share) in FINDING_LABELS.items()
    }
    laterals = quota_choice(rng, n, {True: 0.3, False: 0.7})
    styles = quota_choice(rng, n, REPORT_STYLES)
    studies = []
    for i, subject in enumerate(subjects):
        frontal = "PA" if laterals[i] or rng.uniform() < 0.4 else "AP"
        year, day, seconds = rng.integers(2110, 2200), rng.integers(0, 365), rng.uniform(0, 86400)
        date = np.datetime64(f"{year}-01-01") + np.timedelta64(int(day), "D")
        hh, mm, ss = int(seconds // 3600), int(seconds % 3600 // 60), seconds % 60
        studies.append(
            MimicStudy(
                subject_id=subject,
                study_id=int(study_ids[i]),
                split=split_of[subject],
                states={name: states[name][i] for name in FINDING_LABELS},
                frontal_view=frontal,
                dicom_ids=tuple(hex_groups(rng) for _ in range(2 if laterals[i] else 1)),
                study_date=str(date).replace("-", ""),
                study_time=f"{hh * 10000 + mm * 100 + int(ss)}.{int(ss % 1 * 1000):03d}",
                report_style=styles[i],
                age=int(rng.integers(20, 91)),
                sex="F" if rng.uniform() < 0.5 else "M",
                mentions_negatives={name: bool(rng.uniform() < 0.6) for name in FINDING_LABELS},
            )
        )
    return studies


def count_images(studies: list[MimicStudy]) -> int:
    return sum(len(study.dicom_ids) for study in studies)


# ---------------------------------------------------------------------------- reports
def _side_text(sides: list[str]) -> str:
    sides = sorted(set(sides))
    return "bilateral" if len(sides) > 1 else sides[0]


def _drawn_sides(picture: Radiograph, name: str) -> list[str]:
    geometry = picture.drawn.get(name, {})
    if name == "effusion":
        return [lung["side"] for lung in geometry["lungs"]]
    if name == "pneumonia":
        return [o["side"] for o in geometry["opacities"]]
    if name == "pneumothorax":
        return [c["side"] for c in geometry["components"]]
    return [geometry["side"]] if "side" in geometry else []


def _sentence(name: str, state: str, severity: float, sides: list[str]) -> tuple[str, str]:
    """(findings sentence, impression phrase) describing a drawn finding."""
    side = _side_text(sides) if sides else ""
    size = "moderate" if severity > 0.85 else "small"
    if state == "uncertain":
        return {
            "cardiomegaly": ("The heart size is borderline enlarged.", "Possible mild cardiomegaly."),
            "effusion": (f"Possible trace {side} pleural effusion.", f"Possible trace {side} pleural effusion."),
            "atelectasis": (
                f"Minimal {side} basilar opacity may reflect atelectasis.",
                "Possible minimal atelectasis.",
            ),
            "consolidation": (
                f"Subtle opacity in the {side} lung could represent early consolidation.",
                "Possible early consolidation.",
            ),
            "edema": ("Mild perihilar haziness may reflect mild pulmonary edema.", "Possible mild pulmonary edema."),
            "pneumonia": (
                f"Faint opacity in the {side} lung; early pneumonia cannot be excluded.",
                "Pneumonia cannot be excluded.",
            ),
            "pneumothorax": (f"Possible tiny {side} apical pneumothorax.", f"Possible tiny {side} pneumothorax."),
        }[name]
    plural = "s" if side == "bilateral" else ""
    return {
        "cardiomegaly": (f"The heart is {'markedly' if severity > 0.85 else 'moderately'} enlarged.", "Cardiomegaly."),
        "effusion": (
            f"There {'are' if plural else 'is a'} {size} {side} pleural effusion{plural}.",
            f"{size.capitalize()} {side} pleural effusion{plural}.",
        ),
        "atelectasis": (
            f"Linear opacity at the {side} lung base is compatible with subsegmental atelectasis.",
            f"{side.capitalize()} basilar atelectasis.",
        ),
        "consolidation": (
            f"There is a focal consolidation in the {side} lung.",
            f"{side.capitalize()} lung consolidation.",
        ),
        "edema": ("Bilateral perihilar haziness is consistent with pulmonary edema.", "Pulmonary edema."),
        "pneumonia": (
            f"Rounded opacit{'ies' if len(sides) > 1 else 'y'} in the {side} lung{plural} concerning for pneumonia.",
            "Findings concerning for pneumonia.",
        ),
        "pneumothorax": (
            f"There is a {size} {side} pneumothorax along the lateral chest wall and apex.",
            f"{size.capitalize()} {side} pneumothorax.",
        ),
    }[name]


NEGATIONS = {
    "cardiomegaly": "The heart size is normal.",
    "effusion": "No pleural effusion.",
    "consolidation": "No focal consolidation.",
    "edema": "No pulmonary edema.",
    "pneumothorax": "No pneumothorax.",
}
INDICATIONS = ("cough", "shortness of breath", "fever", "chest pain", "hypoxia")


def _wrap(text: str) -> str:
    return "\n".join(" " + line for line in textwrap.wrap(text, width=76))


def write_report(
    study: MimicStudy, picture: Radiograph, severities: dict[str, float], rng: np.random.Generator
) -> tuple[str, dict[str, float | None]]:
    """The report text and the CheXpert labels a labeler reads from it."""
    labels: dict[str, float | None] = dict.fromkeys(LABELS)
    sentences, impressions = [], []
    for name, (label, _) in FINDING_LABELS.items():
        state = study.states[name]
        if state == "absent":
            if name in NEGATIONS and study.mentions_negatives[name]:
                sentences.append(NEGATIONS[name])
                labels[label] = 0.0
            continue
        sentence, phrase = _sentence(name, state, severities[name], _drawn_sides(picture, name))
        sentences.append(sentence)
        impressions.append(phrase)
        labels[label] = 1.0 if state == "stated" else -1.0
    if any(labels[c] == 1.0 for c in ("Atelectasis", "Consolidation", "Edema", "Pneumonia")):
        labels["Lung Opacity"] = 1.0
    if not impressions:
        labels["No Finding"] = 1.0
        impressions = ["No acute cardiopulmonary process."]
    lateral = " and lateral" if len(study.dicom_ids) > 1 else ""
    technique = f"Chest {study.frontal_view}{lateral}" if study.frontal_view == "PA" else "Portable AP chest"
    header = [
        "                                 FINAL REPORT",
        f" EXAMINATION:  {study.procedure}",
        " ",
        f" INDICATION:  ___-year-old {'woman' if study.sex == 'F' else 'man'} "
        f"with {INDICATIONS[int(rng.integers(len(INDICATIONS)))]}.",
        " ",
        f" TECHNIQUE:  {technique}",
        " ",
        f" COMPARISON:  {'None.' if rng.uniform() < 0.5 else '___.'}",
        " ",
    ]
    impression = (
        "As above."
        if study.report_style == "short_impression" and labels["No Finding"] is None
        else " ".join(impressions)
    )
    if study.report_style == "no_findings_section":
        body = [" IMPRESSION: ", " ", _wrap(" ".join(sentences) or impression)]
    else:
        body = [
            " FINDINGS: ",
            " ",
            _wrap(" ".join(sentences) or "The lungs are clear."),
            " ",
            " IMPRESSION: ",
            " ",
            _wrap(impression),
        ]
    return "\n".join(header + body) + "\n", labels


# ---------------------------------------------------------------------------- writing
def _findings(rng: np.random.Generator, study: MimicStudy) -> list[Finding]:
    findings = []
    for name, state in study.states.items():
        if state == "absent":
            continue
        severity = rng.uniform(0.75, 1.0) if state == "stated" else rng.uniform(0.3, 0.45)
        extent = 2 if name == "effusion" and rng.uniform() < 0.4 else 1
        findings.append(Finding(name, severity, extent))
    return findings


def _metadata_row(study: MimicStudy, dicom_id: str, view: str, size: int) -> list[object]:
    orientation = "Erect" if view != "AP" else ("Recumbent" if study.study_id % 2 else "")
    return [
        dicom_id,
        study.subject_id,
        study.study_id,
        study.procedure,
        view,
        size,
        size,
        study.study_date,
        study.study_time,
        study.procedure,
        VIEW_MEANING[view],
        orientation,
    ]


def write(ctx: DemoContext, studies: list[MimicStudy]) -> dict:
    jpg_root = ctx.root / FOLDER / VERSION
    metadata, splits, chexpert, truth = [], [], [], {}
    for index, study in enumerate(studies):
        rng = ctx.image_rng(FOLDER, index)
        findings = _findings(rng, study)
        severities = {f.name: f.severity for f in findings}
        pictures, images = [], {}
        for dicom_id, view in zip(study.dicom_ids, study.views):
            drawn = [f for f in findings if not (view == "LATERAL" and f.name == "pneumothorax")]
            picture = draw_radiograph(rng, ctx.image_size, drawn, view="lateral" if view == "LATERAL" else "frontal")
            write_atomic(ctx.root / study.image_path(dicom_id), jpeg_bytes(picture.pixels))
            metadata.append(_metadata_row(study, dicom_id, view, ctx.image_size))
            splits.append([dicom_id, study.study_id, study.subject_id, study.split])
            images[dicom_id] = {"view": view, "path": study.image_path(dicom_id), **radiograph_truth(picture)}
            pictures.append(picture)
            ctx.advance(1)
        report, labels = write_report(study, pictures[0], severities, rng)  # the frontal view comes first
        write_atomic(ctx.root / study.report_path, report)
        chexpert.append([study.subject_id, study.study_id, *(label_text(labels[c]) for c in LABELS)])
        truth[f"s{study.study_id}"] = {
            "subject_id": study.subject_id,
            "split": study.split,
            "report": study.report_path,
            "report_style": study.report_style,
            "states": study.states,
            "severity": {k: round(v, 3) for k, v in severities.items()},
            "labels": {c: labels[c] for c in LABELS},
            "images": images,
        }
    write_atomic(jpg_root / "mimic-cxr-2.0.0-metadata.csv.gz", gzip_bytes(csv_text(METADATA_HEADER, metadata)))
    write_atomic(jpg_root / "mimic-cxr-2.0.0-split.csv.gz", gzip_bytes(csv_text(SPLIT_HEADER, splits)))
    write_atomic(jpg_root / "mimic-cxr-2.0.0-chexpert.csv.gz", gzip_bytes(csv_text(CHEXPERT_HEADER, chexpert)))
    return {"dataset": FOLDER, "reports_folder": REPORTS_FOLDER, "studies": truth}
