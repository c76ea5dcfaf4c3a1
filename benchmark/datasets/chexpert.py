"""CheXpert (v1.0 and v1.0-small), Stanford ML Group.

Official layout: ``CheXpert-v1.0-small/{train.csv, valid.csv, train/, valid/}`` (or
``CheXpert-v1.0``); ``Path`` values carry the release folder as prefix, for example
``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``. The image id used by the
manifests is the path WITHOUT that prefix, so both releases share one manifest.

Releases: ``CheXpert-v1.0`` holds the full-resolution images, ``CheXpert-v1.0-small`` the
same images downsampled (about 320 pixels). The reference downstream code (MGCA) read the
FULL-resolution release, so when a data root holds both, ``--chexpert-release auto`` (the
default) reads ``CheXpert-v1.0`` and falls back to ``CheXpert-v1.0-small`` only when the full
one is absent; ``full`` or ``small`` force one and stop with an error naming the folder looked
for when it is absent. The release read is recorded in every result (``data.release``); the
two releases' image files differ, so their units and cached features never mix (the image
content digest is part of every unit and feature-cache key).

Labels (protocol): the 5 competition tasks; blank -> 0; uncertain (-1) -> 1 for Atelectasis,
Edema and Pleural Effusion (U-Ones) and -> 0 for Cardiomegaly and Consolidation (U-Zeros).
Only frontal views are used. The test set is the official ``valid.csv`` (frontal rows).

Both files are validated row by row as they are read (:class:`~benchmark.errors.LabelFileError`
with file, line and value): each competition label is blank, 1.0, 0.0 or -1.0 (the numbers
may be written without the ``.0``), ``Frontal/Lateral`` is Frontal or Lateral and ``Path``
is set. Other columns are not used and not checked.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ..data_roots import DataRoots
from ..errors import ConfigError, LabelFileError
from .base import BadRows, DatasetAdapter, csv_line, source_name

COMPETITION_TASKS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
UNCERTAIN_TO_ONE = ("Atelectasis", "Edema", "Pleural Effusion")


RELEASE_FOLDERS = {"full": "CheXpert-v1.0", "small": "CheXpert-v1.0-small"}  # --chexpert-release -> folder
RELEASE_CHOICES = ("auto", *RELEASE_FOLDERS)


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

    flag(
        frame["Path"] == "",
        "",
        "Path is empty",
        "the image's path, e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg",
    )
    view = frame["Frontal/Lateral"]
    flag(
        ~view.isin(VIEWS),
        view,
        "Frontal/Lateral " + view.map(repr) + " is not Frontal or Lateral",
        "Frontal or Lateral",
    )
    for task in COMPETITION_TASKS:
        text = frame[task]
        number = pd.to_numeric(text, errors="coerce")
        ok = (text == "") | number.isin(LABEL_VALUES)
        flag(
            ~ok,
            text,
            task + " label " + text.map(repr) + " is not blank, 1.0, 0.0 or -1.0",
            f"{task}: blank (not mentioned), 1.0 (positive), 0.0 (negative) or -1.0 (uncertain)",
        )
    for index in np.flatnonzero((problems != "").to_numpy()):
        bad_rows.add(
            name,
            csv_line(frame.index[index]),
            values.iloc[index],
            problems.iloc[index],
            allowed.iloc[index],
            image_id=strip_release_prefix(frame["Path"].iloc[index]) or None,
        )
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
        raise LabelFileError(
            f"{name}, line 1: the header lacks the columns {absent} "
            f"(an official CheXpert label file has {', '.join(needed)}, ...)"
        )
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
    homepage = (
        "https://stanfordaimi.azurewebsites.net/datasets/8cbd9ed4-2eb9-4565-affc-111cf4f7ebe2"
        " (Stanford AIMI; free registration)"
    )
    folder_names = ("CheXpert-v1.0", "CheXpert-v1.0-small")  # auto prefers the full resolution (the reference's)
    required_files = ("train.csv", "valid.csv")
    layout = """
CheXpert-v1.0/                  full resolution, the reference's (or CheXpert-v1.0-small/)
  train.csv                     official label file (Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,...)
  valid.csv                     official validation labels (the protocol's test set)
  train/patient00001/study1/view1_frontal.jpg
  valid/patient64541/study1/view1_frontal.jpg
"""

    @classmethod
    def find_folder(cls, roots: DataRoots) -> Path | None:
        """The first candidate holding the label files (the full release first) whose release
        is the one ``--chexpert-release`` asks for (any, under ``auto``)."""
        wanted = requested_release(roots)
        for candidate in cls.candidates(roots):
            if cls.holds_required_files(candidate) and (wanted is None or release_of(candidate) == wanted):
                return candidate
        return None

    @classmethod
    def missing_message(cls, roots: DataRoots) -> str:
        wanted = requested_release(roots)
        if wanted is None:
            return super().missing_message(roots)
        choice = roots.chexpert_release
        lines = [
            f"{cls.title} ({cls.name}): --chexpert-release {choice} asks for the release {wanted}, which was not found."
        ]
        if roots.root is None and cls.name not in roots.overrides:
            lines.append("No data root is set: pass --data-root DIR (or set MEDVLP_DATA_ROOT).")
        else:
            lines.append(f"Data root: {roots.for_dataset(cls.name)} (from {roots.source}). Looked for {wanted} in:")
            for candidate in cls.candidates(roots):
                missing = [f for f in cls.required_files if not (candidate / f).exists()]
                found = (
                    f"holds {release_of(candidate)}, not {wanted}" if not missing else f"missing {', '.join(missing)}"
                )
                lines.append(f"  {candidate}: {found}")
        lines.append(f"Put {wanted}/ (train.csv, valid.csv, train/, valid/) under the data root.")
        present = [c for c in cls.candidates(roots) if cls.holds_required_files(c)]
        if present:
            other = next(option for option, folder in RELEASE_FOLDERS.items() if folder != wanted)
            lines.append(
                f"Or read the release that is there ({release_of(present[0])} at {present[0]}): "
                f"--chexpert-release auto (or {other})."
            )
        lines.append(f"Obtain it from: {cls.homepage}")
        return "\n".join(lines)

    def release(self) -> str:
        return release_of(self.folder)

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


def requested_release(roots: DataRoots) -> str | None:
    """The release folder name ``--chexpert-release`` forces, or None under ``auto``."""
    choice = roots.chexpert_release
    if choice not in RELEASE_CHOICES:
        raise ConfigError(f"--chexpert-release {choice!r}: expected one of {', '.join(RELEASE_CHOICES)}")
    return RELEASE_FOLDERS.get(choice)


def release_of(folder: Path) -> str:
    """Which release a CheXpert folder holds: its official folder name, else (a folder renamed,
    or named by a ``[datasets]`` override) the release prefix of the first ``Path`` in its
    train.csv, else the folder's own name."""
    folder = Path(folder)
    if folder.name in RELEASE_FOLDERS.values():
        return folder.name
    try:
        with open(folder / "train.csv", newline="") as handle:
            rows = csv.DictReader(handle)
            first = next(rows, None) or {}
    except (OSError, csv.Error, UnicodeDecodeError):
        return folder.name
    prefix = str(first.get("Path") or "").strip().partition("/")[0]
    return prefix if prefix in RELEASE_FOLDERS.values() else folder.name


def read_official_train_labels(path: Path) -> pd.DataFrame:
    """Records of an official train.csv alone (used to build the committed manifest)."""
    return read_chexpert_csv(path, "train")


DATASET = CheXpert  # this module's plug-in (benchmark/plugins.py)
