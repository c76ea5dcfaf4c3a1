"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2).

Official layout: ``rsna-pneumonia-detection-challenge/stage_2_train_labels.csv`` with one
row PER BOX (``patientId,x,y,width,height,Target``; a negative patient has one row with
empty box fields and Target 0) and DICOMs ``stage_2_train_images/<patientId>.dcm``.
Records are per patient: label = any Target 1; ``boxes`` = all the patient's boxes as
(x, y, width, height) in the image's pixel space (1024 x 1024 in the real data).
Negatives stay in every split.
"""

from __future__ import annotations

import pandas as pd

from .base import DatasetAdapter

LABELS_FILE = "stage_2_train_labels.csv"
IMAGES_DIR = "stage_2_train_images"


def read_rsna_labels(source) -> pd.DataFrame:
    """Parse the official box-per-row CSV into one record per patient."""
    rows = pd.read_csv(source)
    expected = {"patientId", "x", "y", "width", "height", "Target"}
    if not expected <= set(rows.columns):
        raise ValueError(f"{source}: expected columns {sorted(expected)}, found {list(rows.columns)}")
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    target: dict[str, int] = {}
    for pid, x, y, w, h, t in rows[["patientId", "x", "y", "width", "height", "Target"]].itertuples(index=False):
        boxes.setdefault(pid, [])
        target[pid] = max(target.get(pid, 0), int(t))
        if int(t) == 1 and pd.notna(x):
            boxes[pid].append((float(x), float(y), float(w), float(h)))
    ids = list(boxes)  # first-appearance order; manifests sort on their own
    return pd.DataFrame(
        {
            "image_id": ids,
            "group": ids,
            "source_split": "train",
            "Pneumonia": [target[i] for i in ids],
            "boxes": [boxes[i] for i in ids],
        }
    )


class RSNAPneumonia(DatasetAdapter):
    name = "rsna"
    title = "RSNA Pneumonia Detection Challenge"
    homepage = "https://www.kaggle.com/competitions/rsna-pneumonia-detection-challenge/data (Kaggle; accept the competition rules)"
    folder_names = ("rsna-pneumonia-detection-challenge", "rsna_pneumonia", "RSNA_Pneumonia")
    required_files = (LABELS_FILE, IMAGES_DIR)
    layout = """
rsna-pneumonia-detection-challenge/
  stage_2_train_labels.csv      patientId,x,y,width,height,Target (one row per box)
  stage_2_train_images/<patientId>.dcm
"""

    def read_records(self) -> pd.DataFrame:
        records = read_rsna_labels(self.folder / LABELS_FILE)
        records["path"] = [str(self.folder / IMAGES_DIR / f"{pid}.dcm") for pid in records["image_id"]]
        return records

    @staticmethod
    def label_columns() -> list[str]:
        return ["Pneumonia"]
