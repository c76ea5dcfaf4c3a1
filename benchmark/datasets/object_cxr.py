"""Object-CXR (JF Healthcare foreign-object challenge, MIDL 2020).

Official layout: ``object-CXR/{train.csv, dev.csv, train/, dev/}``; the CSVs have
``image_name,annotation``. ``annotation`` is empty for an image without foreign objects, else
objects separated by ``;``, each ``TYPE x1 y1 x2 y2 ...`` in the image's pixel coordinates:
0 = rectangle (two corners), 1 = ellipse (given by its bounding points), 2 = polygon (its
vertices). Every object becomes its TIGHT bounding box: the min / max of its points. (MGCA's
preprocessing boxed polygons as the polylabel centre plus/minus the largest half-extent; we
use the tight box and document the difference.)

Records: one row per image, ``image_id`` = the image name without extension (train and dev
names are disjoint), ``boxes`` = list of (x, y, width, height), ``has_object`` 0/1.
The official dev set is the test set (``source_split`` "test").

Every row is validated as it is read (:class:`~benchmark.errors.LabelFileError` with file,
line and value): ``image_name`` is set; each object's type is 0, 1 or 2; a rectangle or an
ellipse has exactly 4 coordinates, a polygon an even number, at least 6 (three vertices);
every coordinate is a finite number; and the object's box is not degenerate (width > 0 and
height > 0). Coordinates are not bounded: the images' sizes vary and are not read here.
"""

from __future__ import annotations

import math

import pandas as pd

from ..errors import LabelFileError
from .base import BadRows, DatasetAdapter, csv_line, source_name

SPLIT_FILES = {"train": ("train.csv", "train"), "test": ("dev.csv", "dev")}
OBJECT_TYPES = {0: "rectangle", 1: "ellipse", 2: "polygon"}
ANNOTATION_ALLOWED = (
    "empty (no object), or objects 'TYPE x1 y1 x2 y2 ...' separated by ';': TYPE 0 (rectangle) "
    "or 1 (ellipse) with exactly 4 numbers, 2 (polygon) with an even number >= 6; "
    "each object's box with width > 0 and height > 0"
)


class AnnotationProblem(Exception):
    """What is wrong with one object of an annotation: ``(value, problem)``."""


def _object_box(part: str) -> tuple[float, float, float, float]:
    tokens = part.split()
    try:
        kind = float(tokens[0])
    except ValueError:
        kind = math.nan
    if kind not in OBJECT_TYPES:  # 0.0 == 0 etc.; nan and 1.5 are not
        raise AnnotationProblem(tokens[0], f"object type {tokens[0]!r} in {part.strip()!r} is not 0, 1 or 2")
    kind = int(kind)
    try:
        values = [float(t) for t in tokens[1:]]
    except ValueError:
        bad = next(t for t in tokens[1:] if not _is_float(t))
        raise AnnotationProblem(bad, f"coordinate {bad!r} in {part.strip()!r} is not a number") from None
    bad = next((t for t, v in zip(tokens[1:], values) if not math.isfinite(v)), None)
    if bad is not None:
        raise AnnotationProblem(bad, f"coordinate {bad!r} in {part.strip()!r} is not a finite number")
    if kind in (0, 1) and len(values) != 4:
        raise AnnotationProblem(
            part.strip(), f"{OBJECT_TYPES[kind]} {part.strip()!r} has {len(values)} coordinates, not 4"
        )
    if kind == 2 and (len(values) < 6 or len(values) % 2):
        raise AnnotationProblem(
            part.strip(), f"polygon {part.strip()!r} has {len(values)} coordinates, not an even number >= 6"
        )
    xs, ys = values[0::2], values[1::2]
    x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
    if x2 <= x1 or y2 <= y1:
        raise AnnotationProblem(
            part.strip(),
            f"{OBJECT_TYPES[kind]} {part.strip()!r} has a degenerate box (width {x2 - x1:g}, height {y2 - y1:g})",
        )
    return (x1, y1, x2 - x1, y2 - y1)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _boxes(text) -> list[tuple[float, float, float, float]]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return [_object_box(part) for part in str(text).split(";") if part.split()]


def parse_annotation(text) -> list[tuple[float, float, float, float]]:
    """One Object-CXR annotation string -> list of tight (x, y, width, height) boxes.
    A malformed annotation raises :class:`~benchmark.errors.LabelFileError` (a ValueError)."""
    try:
        return _boxes(text)
    except AnnotationProblem as problem:
        raise LabelFileError(f"Object-CXR annotation: {problem.args[1]}; allowed: {ANNOTATION_ALLOWED}") from None


def read_object_cxr_labels(source, source_split: str, bad_rows: BadRows | None = None) -> pd.DataFrame:
    """Parse train.csv or dev.csv into one record per image, validating every row (see the
    module docstring). ``bad_rows`` decides what a bad row does: raise (default) or be
    collected and left out."""
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    name = source_name(source)
    rows = pd.read_csv(source, dtype=str, keep_default_na=False, skip_blank_lines=False)
    expected = {"image_name", "annotation"}
    if not expected <= set(rows.columns):
        raise LabelFileError(f"{name}, line 1: expected the columns image_name,annotation; found {list(rows.columns)}")
    names, boxes = [], []
    for index, (image_name, annotation) in enumerate(rows[["image_name", "annotation"]].itertuples(index=False)):
        image_name = str(image_name).strip()
        if not image_name and not str(annotation).strip():
            continue  # a blank line
        if not image_name:
            bad_rows.add(name, csv_line(index), "", "image_name is empty", "the image's file name, e.g. 00001.jpg")
            continue
        try:
            image_boxes = _boxes(annotation)
        except AnnotationProblem as problem:
            bad_rows.add(
                name,
                csv_line(index),
                problem.args[0],
                problem.args[1],
                ANNOTATION_ALLOWED,
                image_id=image_name.rsplit(".", 1)[0],
            )
            continue
        names.append(image_name)
        boxes.append(image_boxes)
    ids = [n.rsplit(".", 1)[0] for n in names]
    return pd.DataFrame(
        {
            "image_id": ids,
            "image_name": names,
            "group": ids,
            "source_split": source_split,
            "has_object": [int(bool(b)) for b in boxes],
            "boxes": boxes,
        }
    )


class ObjectCXR(DatasetAdapter):
    name = "object_cxr"
    title = "Object-CXR (foreign objects on chest X-rays)"
    homepage = (
        "https://github.com/hlk-1135/object-CXR (JF Healthcare, MIDL 2020 challenge; images and train.csv/dev.csv)"
    )
    folder_names = ("object-CXR", "object_cxr", "object-cxr")
    required_files = ("train.csv", "dev.csv", "train", "dev")
    layout = """
object-CXR/
  train.csv     image_name,annotation   (objects "TYPE x1 y1 x2 y2 ...;..."; empty = none)
  dev.csv       image_name,annotation   (the official dev set is the test set)
  train/<image_name>.jpg
  dev/<image_name>.jpg
"""

    def read_records(self) -> pd.DataFrame:
        frames = []
        for source_split, (csv_name, folder) in SPLIT_FILES.items():
            frame = read_object_cxr_labels(self.folder / csv_name, source_split, self.bad_rows)
            frame["path"] = [str(self.folder / folder / name) for name in frame["image_name"]]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def label_columns() -> list[str]:
        return ["has_object"]


DATASET = ObjectCXR  # this module's plug-in (benchmark/plugins.py)
