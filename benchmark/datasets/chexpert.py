"""CheXpert (v1.0 and v1.0-small), Stanford ML Group.

Official layout: ``CheXpert-v1.0-small/{train.csv, valid.csv, train/, valid/}`` (or
``CheXpert-v1.0``); ``Path`` values carry the release folder as prefix, for example
``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``. The image id used by the
manifests is the path WITHOUT that prefix, so both releases share one manifest.

Labels (protocol): the 5 competition tasks; blank -> 0; uncertain (-1) -> 1 for Atelectasis,
Edema and Pleural Effusion (U-Ones) and -> 0 for Cardiomegaly and Consolidation (U-Zeros).
Only frontal views are used. The test set is the official ``valid.csv`` (frontal rows).

Both files are validated row by row as they are read (:class:`~benchmark.errors.LabelFileError`
with file, line and value): each competition label is blank, 1.0, 0.0 or -1.0 (the numbers
may be written without the ``.0``), ``Frontal/Lateral`` is Frontal or Lateral and ``Path``
is set. Other columns are not used and not checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LabelFileError
from .base import BadRows, DatasetAdapter, csv_line, source_name

COMPETITION_TASKS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
UNCERTAIN_TO_ONE = ("Atelectasis", "Edema", "Pleural Effusion")


def strip_release_prefix(path: str) -> str:
    """``CheXpert-v1.0-small/train/p/s/v.jpg`` -> ``train/p/s/v.jpg``."""
    head, _, rest = path.partition("/")
    return rest if head.startswith("CheXpert") else path


LABEL_VALUES = (1.0, 0.0, -1.0)
VIEWS = ("Frontal", "Lateral")


def check_chexpert_rows(frame: pd.DataFrame, name: str, bad_rows: BadRows) -> pd.Series:
    """Report every bad row of a label CSV read as text (index = data-row position); returns
    the rows to keep (blank lines and, when skipping, bad rows dropped)."""
    blank = (frame == "").all(axis=1)
    problems = pd.Series("", index=frame.index)  # first problem per row
    values = pd.Series("", index=frame.index)
    allowed = pd.Series("", index=frame.index)

    def flag(mask, value, problem, what):
        new = mask & (problems == "") & ~blank
        problems[new] = problem[new] if isinstance(problem, pd.Series) else problem
        values[new] = value[new] if isinstance(value, pd.Series) else value
        allowed[new] = what

    flag(frame["Path"] == "", "", "Path is empty", "the image's path, e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg")
    view = frame["Frontal/Lateral"]
    flag(~view.isin(VIEWS), view, "Frontal/Lateral " + view.map(repr) + " is not Frontal or Lateral", "Frontal or Lateral")
    for task in COMPETITION_TASKS:
        text = frame[task]
        number = pd.to_numeric(text, errors="coerce")
        ok = (text == "") | number.isin(LABEL_VALUES)
        flag(~ok, text, task + " label " + text.map(repr) + " is not blank, 1.0, 0.0 or -1.0",
             f"{task}: blank (not mentioned), 1.0 (positive), 0.0 (negative) or -1.0 (uncertain)")
    for index in np.flatnonzero((problems != "").to_numpy()):
        bad_rows.add(name, csv_line(frame.index[index]), values.iloc[index], problems.iloc[index], allowed.iloc[index],
                     image_id=strip_release_prefix(frame["Path"].iloc[index]) or None)
    return ~blank & (problems == "")


def read_chexpert_csv(source, source_split: str, bad_rows: BadRows | None = None) -> pd.DataFrame:
    """Parse an official CheXpert label CSV (train.csv or valid.csv) into frontal records,
    validating every row (see the module docstring). ``bad_rows`` decides what a bad row
    does: raise (default) or be collected and left out."""
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    name = source_name(source)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False, skip_blank_lines=False)
    needed = ("Path", "Frontal/Lateral", *COMPETITION_TASKS)
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise LabelFileError(f"{name}, line 1: the header lacks the columns {absent} (an official CheXpert label file has {', '.join(needed)}, ...)")
    frame = frame[list(needed)].apply(lambda column: column.str.strip())
    frame = frame[check_chexpert_rows(frame, name, bad_rows)]
    frame = frame[frame["Frontal/Lateral"] == "Frontal"].copy()
    out = pd.DataFrame({"image_id": frame["Path"].map(strip_release_prefix)})
    out["group"] = out["image_id"].str.split("/").str[1]
    out["source_split"] = source_split
    for task in COMPETITION_TASKS:
        values = pd.to_numeric(frame[task], errors="coerce").fillna(0.0)
        uncertain_value = 1.0 if task in UNCERTAIN_TO_ONE else 0.0
        out[task] = values.replace(-1.0, uncertain_value).astype(int).to_numpy()
    return out.reset_index(drop=True)


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
            read_chexpert_csv(self.folder / "train.csv", "train", self.bad_rows),
            read_chexpert_csv(self.folder / "valid.csv", "test", self.bad_rows),
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
