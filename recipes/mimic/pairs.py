"""(image, report) pairs from the official MIMIC-CXR-JPG and MIMIC-CXR layouts.

Layout (PhysioNet, credentialed access):
    <root>/mimic-cxr-jpg/2.0.0/files/p10/p10000032/s50414267/<dicom_id>.jpg
    <root>/mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-{metadata,split,chexpert}.csv.gz
    <root>/mimic-cxr/2.0.0/files/p10/p10000032/s50414267.txt        (reports, from mimic-cxr-reports.zip)

``load_pairs`` returns one row per image with its study's report sections. Frontal views
are PA/AP (``ViewPosition``); the synthetic-data paper keeps frontal images whose report has
at least 3 tokens (213,384 pairs in MIMIC-CXR 2.0.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.errors import DatasetNotFoundError

from .reports import read_report

FRONTAL_VIEWS = ("PA", "AP")
TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class MimicLayout:
    root: Path  # the data root holding mimic-cxr-jpg/ and mimic-cxr/

    @property
    def jpg(self) -> Path:
        return self.root / "mimic-cxr-jpg" / "2.0.0"

    @property
    def reports(self) -> Path:
        return self.root / "mimic-cxr" / "2.0.0"

    def image_path(self, subject_id: int, study_id: int, dicom_id: str, base: Path | None = None) -> Path:
        subject = f"p{subject_id}"
        return (base or self.jpg) / "files" / subject[:3] / subject / f"s{study_id}" / f"{dicom_id}.jpg"

    def report_path(self, subject_id: int, study_id: int) -> Path:
        subject = f"p{subject_id}"
        return self.reports / "files" / subject[:3] / subject / f"s{study_id}.txt"

    def check(self) -> None:
        needed = [
            self.jpg / "mimic-cxr-2.0.0-metadata.csv.gz",
            self.jpg / "mimic-cxr-2.0.0-split.csv.gz",
            self.jpg / "files",
            self.reports / "files",
        ]
        missing = [str(p) for p in needed if not p.exists()]
        if missing:
            raise DatasetNotFoundError(
                "MIMIC-CXR-JPG with its reports was not found. Missing:\n  "
                + "\n  ".join(missing)
                + "\nExpected layout under the data root:\n"
                "  mimic-cxr-jpg/2.0.0/{files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg, "
                "mimic-cxr-2.0.0-metadata.csv.gz, mimic-cxr-2.0.0-split.csv.gz}\n"
                "  mimic-cxr/2.0.0/files/pXX/pXXXXXXXX/sXXXXXXXX.txt (unzipped mimic-cxr-reports.zip)\n"
                "Obtain them from https://physionet.org/content/mimic-cxr-jpg/2.0.0/ and "
                "https://physionet.org/content/mimic-cxr/2.0.0/ (credentialed access)."
            )


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(text or ""))


def load_pairs(
    root: str | Path, *, frontal_only: bool = True, min_tokens: int = 3, section: str = "impression"
) -> pd.DataFrame:
    """One row per image: ids, split, view, image path, report path and report sections.

    Rows whose ``section`` (default IMPRESSION) has fewer than ``min_tokens`` word tokens
    are dropped."""
    layout = MimicLayout(Path(root))
    layout.check()
    meta = pd.read_csv(layout.jpg / "mimic-cxr-2.0.0-metadata.csv.gz", dtype={"dicom_id": str})
    split = pd.read_csv(layout.jpg / "mimic-cxr-2.0.0-split.csv.gz", dtype={"dicom_id": str})
    frame = meta.merge(split[["dicom_id", "split"]], on="dicom_id", how="left")
    if frontal_only:
        frame = frame[frame["ViewPosition"].isin(FRONTAL_VIEWS)]
    sections = {}
    for subject, study in frame[["subject_id", "study_id"]].drop_duplicates().itertuples(index=False):
        path = layout.report_path(subject, study)
        sections[(subject, study)] = read_report(path) if path.is_file() else {}
    frame = frame.assign(
        image_path=[
            str(layout.image_path(s, t, d))
            for s, t, d in frame[["subject_id", "study_id", "dicom_id"]].itertuples(index=False)
        ],
        report_path=[
            str(layout.report_path(s, t)) for s, t in frame[["subject_id", "study_id"]].itertuples(index=False)
        ],
        impression=[
            sections[(s, t)].get("impression", "") for s, t in frame[["subject_id", "study_id"]].itertuples(index=False)
        ],
        findings=[
            sections[(s, t)].get("findings", "") for s, t in frame[["subject_id", "study_id"]].itertuples(index=False)
        ],
    )
    frame = frame[frame[section].map(count_tokens) >= min_tokens]
    return frame.sort_values(["subject_id", "study_id", "dicom_id"]).reset_index(drop=True)
