"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2).

Official layout: ``rsna-pneumonia-detection-challenge/stage_2_train_labels.csv`` with one
row PER BOX (``patientId,x,y,width,height,Target``; a negative patient has one row with
empty box fields and Target 0) and DICOMs ``stage_2_train_images/<patientId>.dcm``.
Records are per patient: label = any Target 1; ``boxes`` = all the patient's boxes as
(x, y, width, height) in the image's pixel space (1024 x 1024 in the real data).
Negatives stay in every split.

Every row is validated as it is read (:class:`~benchmark.errors.LabelFileError` with file,
line and value): ``Target`` is 0 or 1; a Target 1 row has x, y, width and height, all
numbers, width > 0, height > 0 and the box inside the image: 0 <= x, 0 <= y,
x + width <= 1024, y + height <= 1024. The bound is the official image size, 1024 x 1024
(every stage-2 DICOM has it): the adapter does not open the DICOMs while reading labels, so
it cannot use a per-image size. A Target 0 row has all four coordinates empty.
"""

from __future__ import annotations

import math

import pandas as pd

from ..errors import LabelFileError
from .base import BadRows, DatasetAdapter, csv_line, source_name

LABELS_FILE = "stage_2_train_labels.csv"
IMAGES_DIR = "stage_2_train_images"
IMAGE_SIDE = 1024  # every official stage-2 image is 1024 x 1024
COLUMNS = ("patientId", "x", "y", "width", "height", "Target")
COORDINATES = ("x", "y", "width", "height")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def rsna_row_problem(values: dict[str, str], side: int = IMAGE_SIDE) -> tuple[str, str, str] | None:
    """``(value, problem, allowed)`` for a bad row of stage_2_train_labels.csv, else None.
    ``values``: the row's stripped texts by column."""
    target = values["Target"]
    if target not in ("0", "1") and _number(target) not in (0.0, 1.0):
        return target, f"Target {target!r} is not 0 or 1", "Target 0 (no pneumonia) or 1 (a box)"
    if _number(target) == 0.0:
        for column in COORDINATES:
            if values[column]:
                return (
                    values[column],
                    f"{column} {values[column]!r} is set on a Target 0 row",
                    "empty x, y, width and height on a Target 0 row",
                )
        return None
    allowed = (
        f"on a Target 1 row, numbers x, y, width, height with width > 0, height > 0, x >= 0, y >= 0, "
        f"x + width <= {side}, y + height <= {side} (the official images are {side}x{side})"
    )
    numbers = {}
    for column in COORDINATES:
        text = values[column]
        if not text:
            return text, f"{column} is empty on a Target 1 row", allowed
        numbers[column] = _number(text)
        if numbers[column] is None:
            return text, f"{column} {text!r} is not a number", allowed
    for size, origin in (("width", "x"), ("height", "y")):
        if numbers[size] <= 0:
            return values[size], f"{size} {values[size]!r} is not > 0", allowed
        if numbers[origin] < 0:
            return values[origin], f"{origin} {values[origin]!r} is negative (outside the image)", allowed
        end = numbers[origin] + numbers[size]
        if end > side:
            return (
                f"{values[origin]} + {values[size]}",
                f"{origin} + {size} = {values[origin]} + {values[size]} = {end:g} is past the image's edge at {side}",
                allowed,
            )
    return None


def read_rsna_labels(source, bad_rows: BadRows | None = None, image_side: int = IMAGE_SIDE) -> pd.DataFrame:
    """Parse the official box-per-row CSV into one record per patient, validating every row
    (see the module docstring). ``bad_rows`` decides what a bad row does: raise (default) or
    be collected, its patient then left out."""
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    name = source_name(source)
    rows = pd.read_csv(source, dtype=str, keep_default_na=False, skip_blank_lines=False)
    rows.columns = [str(c).strip() for c in rows.columns]
    if not set(COLUMNS) <= set(rows.columns):
        raise LabelFileError(f"{name}, line 1: expected the columns {', '.join(COLUMNS)}; found {list(rows.columns)}")
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    target: dict[str, int] = {}
    for index, raw in enumerate(rows[list(COLUMNS)].itertuples(index=False)):
        values = dict(zip(COLUMNS, (str(v).strip() for v in raw)))
        if not any(values.values()):
            continue  # a blank line
        pid = values["patientId"]
        if not pid:
            bad_rows.add(name, csv_line(index), "", "patientId is empty", "the patient's id (the DICOM's file name)")
            continue
        problem = rsna_row_problem(values, image_side)
        if problem is not None:
            bad_rows.add(name, csv_line(index), *problem, image_id=pid)
            continue
        boxes.setdefault(pid, [])
        positive = _number(values["Target"]) == 1.0
        target[pid] = max(target.get(pid, 0), int(positive))
        if positive:
            boxes[pid].append(tuple(float(values[c]) for c in COORDINATES))
    skipped = bad_rows.image_ids()
    ids = [i for i in boxes if i not in skipped]  # first-appearance order; manifests sort on their own
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
    homepage = (
        "https://www.kaggle.com/competitions/rsna-pneumonia-detection-challenge/data"
        " (Kaggle; accept the competition rules)"
    )
    folder_names = ("rsna-pneumonia-detection-challenge", "rsna_pneumonia", "RSNA_Pneumonia")
    required_files = (LABELS_FILE, IMAGES_DIR)
    layout = """
rsna-pneumonia-detection-challenge/
  stage_2_train_labels.csv      patientId,x,y,width,height,Target (one row per box)
  stage_2_train_images/<patientId>.dcm
"""

    def read_records(self) -> pd.DataFrame:
        records = read_rsna_labels(self.folder / LABELS_FILE, self.bad_rows)
        records["path"] = [str(self.folder / IMAGES_DIR / f"{pid}.dcm") for pid in records["image_id"]]
        return records

    @staticmethod
    def label_columns() -> list[str]:
        return ["Pneumonia"]


DATASET = RSNAPneumonia  # this module's plug-in (benchmark/plugins.py)
