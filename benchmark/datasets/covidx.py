"""COVIDx (COVID-Net; Kaggle "COVIDx CXR").

Official layout: ``COVIDx/{train/, test/}`` image folders and space-separated label files
WITHOUT a header, ``patient_id filename label source``. File names differ by version:
``train.txt``/``test.txt`` (COVIDx CXR-2, CXR-3, CXR-4 add ``val.txt``) or
``train_COVIDx<V>.txt``/``test_COVIDx<V>.txt`` (COVIDx 7-9, A = 3-class, B = binary).
The classification task needs the 3-class labels: normal -> 0, pneumonia -> 1,
COVID-19 -> 2. The detected version (file names, label set, content hash) is recorded in
every result.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from ..errors import DatasetNotFoundError
from .base import DatasetAdapter

CLASSES = ("normal", "pneumonia", "COVID-19")
CLASS_INDEX = {name.lower(): i for i, name in enumerate(CLASSES)}


def read_covidx_labels(source, source_split: str) -> pd.DataFrame:
    """Parse one space-separated COVIDx label file (``patient_id filename label source``)."""
    rows = []
    with open(source, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 3:
                raise ValueError(f"{source}:{line_number}: expected 'patient_id filename label source', got {line!r}")
            # Some releases have 5 columns (a trailing note) or a source with spaces: the
            # label is the first known class name after the filename.
            patient, filename = parts[0], parts[1]
            label = parts[2]
            rows.append((filename, patient, label, " ".join(parts[3:])))
    frame = pd.DataFrame(rows, columns=["image_id", "group", "label_name", "source"])
    frame["source_split"] = source_split
    return frame


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
    homepage = "https://www.kaggle.com/datasets/andyczhao/covidx-cxr2 (Kaggle) and https://github.com/lindawangg/COVID-Net (label files)"
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
        frames = [read_covidx_labels(path, split) for split, path in files.items()]
        records = pd.concat(frames, ignore_index=True)
        labels = records["label_name"].str.lower()
        unknown = sorted(set(labels) - set(CLASS_INDEX))
        if unknown:
            raise DatasetNotFoundError(
                f"COVIDx label files {[p.name for p in files.values()]} hold labels {unknown}: this is a "
                "binary release (COVIDx CXR-2/3/4 or a 'B' version). The covidx_cls task needs the "
                "3-class labels normal / pneumonia / COVID-19 (COVIDx 'A' releases, e.g. train_COVIDx9A.txt)."
            )
        records["label"] = labels.map(CLASS_INDEX).astype(int)
        folder_of = {"train": "train", "test": "test"}
        records["path"] = [
            str(self.folder / folder_of[split] / name) for split, name in zip(records["source_split"], records["image_id"])
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
        return f"COVIDx label files {names}; 3-class (normal, pneumonia, COVID-19); sha256 {digest.hexdigest()[:16]}"

    @staticmethod
    def label_columns() -> list[str]:
        return ["label"]
