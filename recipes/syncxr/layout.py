"""Synthetic studies in the MIMIC-CXR(-JPG) 2.0.0 layout: report files, and the metadata, split
and CheXpert-label tables (``recipes.mimic`` reads them like the real ones).

A synthetic report is written as::

                                     FINAL REPORT
     SYNTHETIC REPORT (recipes.syncxr <sample_id>)
     EXAMINATION:  CHEST (PA)

     FINDINGS: <findings, one line>

     IMPRESSION: <impression, one line>

Each section is one line (whitespace collapsed), so ``recipes.mimic.reports.extract_sections``
returns exactly the generated FINDINGS and IMPRESSION (a header is only recognised at the start
of a line). The metadata marks every image as a frontal PA view (RoentGen generates frontal
images) of the generated size; studies are dated 2201-01-01, after MIMIC-CXR's shifted dates.
CheXpert labels are read from the entities the lexicon finds in the final report text: 1.0 for a
present Abnormality or Disease mapped to the label, 0.0 for a negated one (when none is present),
blank otherwise, and "No Finding" 1.0 when no Abnormality or Disease is present.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from benchmark.atomic import atomic_write, atomic_write_text
from benchmark.demo.writers.mimic import CHEXPERT_HEADER, LABELS, METADATA_HEADER, SPLIT_HEADER, VIEW_MEANING

from .lexicon import NEGATED

VIEW = "PA"
PROCEDURE = "CHEST (PA)"
STUDY_DATE = "22010101"


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def report_text(sample_id: str, findings: str, impression: str) -> str:
    return (
        "                                 FINAL REPORT\n"
        f" SYNTHETIC REPORT (recipes.syncxr {sample_id})\n"
        f" EXAMINATION:  {PROCEDURE}\n \n"
        f" FINDINGS: {one_line(findings)}\n \n"
        f" IMPRESSION: {one_line(impression)}\n"
    )


def study_dir(subject_id: int, study_id: int) -> str:
    subject = f"p{int(subject_id)}"
    return f"files/{subject[:3]}/{subject}/s{int(study_id)}"


def image_relpath(subject_id: int, study_id: int, dicom_id: str) -> str:
    """Relative to ``<root>/mimic-cxr-jpg/2.0.0``."""
    return f"{study_dir(subject_id, study_id)}/{dicom_id}.jpg"


def report_relpath(subject_id: int, study_id: int) -> str:
    """Relative to ``<root>/mimic-cxr/2.0.0``."""
    return f"{study_dir(subject_id, study_id)}.txt"


def metadata_frame(rows: list[dict], height: int, width: int) -> pd.DataFrame:
    """``rows``: dicts with dicom_id, subject_id, study_id."""
    records = [
        (
            r["dicom_id"],
            int(r["subject_id"]),
            int(r["study_id"]),
            PROCEDURE,
            VIEW,
            int(height),
            int(width),
            STUDY_DATE,
            "000000.000",
            PROCEDURE,
            VIEW_MEANING[VIEW],
            "Erect",
        )
        for r in rows
    ]
    return pd.DataFrame(records, columns=list(METADATA_HEADER))


def split_frame(rows: list[dict]) -> pd.DataFrame:
    records = [(r["dicom_id"], int(r["study_id"]), int(r["subject_id"]), r["split"]) for r in rows]
    return pd.DataFrame(records, columns=list(SPLIT_HEADER))


def chexpert_labels(found: dict[str, list[str]], lexicon) -> dict[str, float | None]:
    """CheXpert labels from the entities found in a report (see the module docstring)."""
    labels: dict[str, float | None] = dict.fromkeys(LABELS)
    positive = False
    for category in NEGATED:
        for name in found.get(category, []):
            positive = True
            label = lexicon.chexpert_label(category, name)
            if label:
                labels[label] = 1.0
    for category, negated in NEGATED.items():
        for name in found.get(negated, []):
            label = lexicon.chexpert_label(negated, name)
            if label and labels[label] is None:
                labels[label] = 0.0
    if not positive:
        labels["No Finding"] = 1.0
    return labels


def chexpert_frame(rows: list[dict], lexicon) -> pd.DataFrame:
    """``rows``: dicts with subject_id, study_id and ``entities_found`` (category -> names)."""
    records = []
    for r in rows:
        labels = chexpert_labels(r["entities_found"], lexicon)
        records.append((int(r["subject_id"]), int(r["study_id"]), *(labels[c] for c in LABELS)))
    return pd.DataFrame(records, columns=list(CHEXPERT_HEADER))


def write_gz_csv(frame: pd.DataFrame, path: Path) -> None:
    """Atomic, byte-stable (gzip mtime 0)."""
    atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0}))


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds it; True when written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True


def place_file(source: Path, target: Path, mode: str) -> bool:
    """Put ``source`` at ``target`` as a hard link (falling back to a copy across file systems),
    a copy or a symbolic link, atomically; nothing is done when ``target`` already is that file.
    True when something was written."""
    import shutil

    source, target = Path(source).resolve(), Path(target)
    if mode not in ("hardlink", "copy", "symlink"):
        raise ValueError(f"link mode must be hardlink, copy or symlink, got {mode!r}")
    if target.is_symlink() or target.exists():
        if mode == "symlink" and target.is_symlink() and Path(os.readlink(target)) == source:
            return False
        if mode == "hardlink" and not target.is_symlink() and target.exists() and os.path.samefile(source, target):
            return False
        if mode == "copy" and not target.is_symlink() and target.stat().st_size == source.stat().st_size:
            if target.read_bytes() == source.read_bytes():
                return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    if mode == "symlink":
        os.symlink(source, tmp)
    elif mode == "hardlink":
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
    else:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return True
