"""COVIDx (COVID-Net; Kaggle "COVIDx CXR").

Official layout: ``COVIDx/{train/, test/}`` image folders and space-separated label files
WITHOUT a header, ``patient_id filename label source``. File names differ by version:
``train.txt``/``test.txt`` (COVIDx CXR-2, CXR-3, CXR-4 add ``val.txt``) or
``train_COVIDx<V>.txt``/``test_COVIDx<V>.txt`` (COVIDx 7-9, A = 3-class, B = binary).
The classification task needs the 3-class labels: normal -> 0, pneumonia -> 1,
COVID-19 -> 2. The detected version (file names, label set, content hash) is recorded in
every result.

Classes and versions: every release this adapter accepts (the 3-class ones) has the class
set ``CLASSES``. A release whose labels are all ``positive`` / ``negative`` is a BINARY
release (COVIDx CXR-2/3/4, the 'B' versions) and is refused as a whole. Otherwise every row
is validated as it is read (:class:`~benchmark.errors.LabelFileError` with file, line and
value): at least ``patient_id filename label``, and the label one of ``CLASSES`` (case
does not matter).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from ..errors import DatasetNotFoundError
from .base import BadRows, DatasetAdapter

CLASSES = ("normal", "pneumonia", "COVID-19")
CLASS_INDEX = {name.lower(): i for i, name in enumerate(CLASSES)}
BINARY_LABELS = {"positive", "negative"}  # COVIDx CXR-2/3/4 and the 'B' versions


def read_covidx_labels(
    source, source_split: str, bad_rows: BadRows | None = None, classes: tuple[str, ...] | None = CLASSES
) -> pd.DataFrame:
    """Parse one space-separated COVIDx label file (``patient_id filename label source``;
    no header, so line 1 is the first row), validating every row: at least three fields and,
    unless ``classes`` is None, a label in ``classes`` (case-insensitive). ``bad_rows``
    decides what a bad row does: raise (default) or be collected and left out."""
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    known = None if classes is None else {c.lower() for c in classes}
    rows = []
    with open(source, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 3:
                bad_rows.add(
                    source,
                    line_number,
                    line.strip(),
                    f"{line.strip()!r} has {len(parts)} field(s)",
                    "'patient_id filename label source', space-separated",
                    image_id=f"{source_split}/{parts[-1]}",
                )
                continue
            # Some releases have 5 columns (a trailing note) or a source with spaces.
            patient, filename = parts[0], parts[1]
            label = parts[2]
            if known is not None and label.lower() not in known:
                bad_rows.add(
                    source,
                    line_number,
                    label,
                    f"label {label!r} (image {filename}) is not a class of this release",
                    f"the classes {', '.join(classes)}",
                    image_id=f"{source_split}/{filename}",
                )
                continue
            rows.append((filename, patient, label, " ".join(parts[3:])))
    frame = pd.DataFrame(rows, columns=["image_id", "group", "label_name", "source"])
    frame["source_split"] = source_split
    return frame


def release_labels(path: Path) -> set[str]:
    """The (lower-case) labels a label file uses, read without validation."""
    with open(path, encoding="utf-8") as handle:
        return {parts[2].lower() for parts in (line.split() for line in handle) if len(parts) >= 3}


def find_label_files(folder: Path) -> dict[str, Path]:
    """The official label files in ``folder`` keyed by split, whatever the version's naming."""
    for train_name, test_name in (("train.txt", "test.txt"),):
        if (folder / train_name).is_file() and (folder / test_name).is_file():
            return {"train": folder / train_name, "test": folder / test_name}
    trains = sorted(folder.glob("train_COVIDx*.txt"))
    for train in trains:
        test = folder / train.name.replace("train_", "test_", 1)
        if test.is_file():
            return {"train": train, "test": test}
    return {}


class COVIDx(DatasetAdapter):
    name = "covidx"
    title = "COVIDx"
    homepage = (
        "https://www.kaggle.com/datasets/andyczhao/covidx-cxr2 (Kaggle)"
        " and https://github.com/lindawangg/COVID-Net (label files)"
    )
    folder_names = ("COVIDx", "covidx", "COVIDx-CXR")
    required_files = ("train", "test")
    layout = """
COVIDx/
  train.txt                     'patient_id filename label source', space-separated, no header
  test.txt                      (or train_COVIDx9A.txt / test_COVIDx9A.txt for COVIDx 7-9)
  train/<filename>
  test/<filename>
"""

    @classmethod
    def find_folder(cls, roots):
        folder = super().find_folder(roots)
        return folder if folder is not None and find_label_files(folder) else None

    def label_files(self) -> list[Path]:
        return list(find_label_files(self.folder).values())

    def read_records(self) -> pd.DataFrame:
        files = find_label_files(self.folder)
        if not files:
            raise DatasetNotFoundError(f"No COVIDx label files in {self.folder}.\n{self.layout}")
        labels_used = set().union(*(release_labels(path) for path in files.values()))
        if labels_used and labels_used <= BINARY_LABELS:
            raise DatasetNotFoundError(
                f"COVIDx label files {[str(p) for p in files.values()]} hold only the labels {sorted(labels_used)}: "
                "this is a binary release (COVIDx CXR-2/3/4 or a 'B' version). The covidx_cls task needs the "
                "3-class labels normal / pneumonia / COVID-19 (COVIDx 'A' releases, e.g. train_COVIDx9A.txt)."
            )
        frames = [read_covidx_labels(path, split, self.bad_rows) for split, path in files.items()]
        records = pd.concat(frames, ignore_index=True)
        records["label"] = records["label_name"].str.lower().map(CLASS_INDEX).astype(int)
        folder_of = {"train": "train", "test": "test"}
        records["path"] = [
            str(self.folder / folder_of[split] / name)
            for split, name in zip(records["source_split"], records["image_id"])
        ]
        # The same filename can appear in train and test of some releases: make ids unique.
        records["image_id"] = [f"{split}/{name}" for split, name in zip(records["source_split"], records["image_id"])]
        return records

    def version(self) -> str:
        files = find_label_files(self.folder)
        digest = hashlib.sha256()
        for path in files.values():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        names = "/".join(p.name for p in files.values())
        return (
            f"COVIDx label files {names}; 3-class (normal, pneumonia, COVID-19); sha256 {digest.hexdigest()[:16]}"
            f"{self.skipped_rows_note()}"
        )

    @staticmethod
    def label_columns() -> list[str]:
        return ["label"]


DATASET = COVIDx  # this module's plug-in (benchmark/plugins.py)
