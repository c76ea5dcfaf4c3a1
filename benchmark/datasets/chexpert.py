"""CheXpert (v1.0 and v1.0-small), Stanford ML Group.

Official layout: ``CheXpert-v1.0-small/{train.csv, valid.csv, train/, valid/}`` (or
``CheXpert-v1.0``); ``Path`` values carry the release folder as prefix, for example
``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``. The image id used by the
manifests is the path WITHOUT that prefix, so both releases share one manifest.

Labels (protocol): the 5 competition tasks; blank -> 0; uncertain (-1) -> 1 for Atelectasis,
Edema and Pleural Effusion (U-Ones) and -> 0 for Cardiomegaly and Consolidation (U-Zeros).
Only frontal views are used. The test set is the official ``valid.csv`` (frontal rows).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import DatasetAdapter

COMPETITION_TASKS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
UNCERTAIN_TO_ONE = ("Atelectasis", "Edema", "Pleural Effusion")


def strip_release_prefix(path: str) -> str:
    """``CheXpert-v1.0-small/train/p/s/v.jpg`` -> ``train/p/s/v.jpg``."""
    head, _, rest = path.partition("/")
    return rest if head.startswith("CheXpert") else path


def read_chexpert_csv(source, source_split: str) -> pd.DataFrame:
    """Parse an official CheXpert label CSV (train.csv or valid.csv) into frontal records."""
    frame = pd.read_csv(source)
    frame = frame[frame["Frontal/Lateral"] == "Frontal"].copy()
    out = pd.DataFrame({"image_id": frame["Path"].map(strip_release_prefix)})
    out["group"] = out["image_id"].str.split("/").str[1]
    out["source_split"] = source_split
    for task in COMPETITION_TASKS:
        values = frame[task].fillna(0.0)
        uncertain_value = 1.0 if task in UNCERTAIN_TO_ONE else 0.0
        out[task] = values.replace(-1.0, uncertain_value).astype(int).to_numpy()
    return out


class CheXpert(DatasetAdapter):
    name = "chexpert"
    title = "CheXpert"
    homepage = "https://stanfordaimi.azurewebsites.net/datasets/8cbd9ed4-2eb9-4565-affc-111cf4f7ebe2 (Stanford AIMI; free registration)"
    folder_names = ("CheXpert-v1.0-small", "CheXpert-v1.0")
    required_files = ("train.csv", "valid.csv")
    layout = """
CheXpert-v1.0-small/            (or CheXpert-v1.0/)
  train.csv                     official label file (Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,...)
  valid.csv                     official validation labels (the protocol's test set)
  train/patient00001/study1/view1_frontal.jpg
  valid/patient64541/study1/view1_frontal.jpg
"""

    def read_records(self) -> pd.DataFrame:
        frames = [
            read_chexpert_csv(self.folder / "train.csv", "train"),
            read_chexpert_csv(self.folder / "valid.csv", "test"),
        ]
        records = pd.concat(frames, ignore_index=True)
        records["path"] = [str(self.folder / image_id) for image_id in records["image_id"]]
        return records

    @staticmethod
    def label_columns() -> list[str]:
        return list(COMPETITION_TASKS)


def read_official_train_labels(path: Path) -> pd.DataFrame:
    """Records of an official train.csv alone (used to build the committed manifest)."""
    return read_chexpert_csv(path, "train")
