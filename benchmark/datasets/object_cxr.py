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
"""

from __future__ import annotations

import math

import pandas as pd

from .base import DatasetAdapter

SPLIT_FILES = {"train": ("train.csv", "train"), "test": ("dev.csv", "dev")}
OBJECT_TYPES = {0: "rectangle", 1: "ellipse", 2: "polygon"}


def parse_annotation(text) -> list[tuple[float, float, float, float]]:
    """One Object-CXR annotation string -> list of tight (x, y, width, height) boxes."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    boxes = []
    for part in str(text).split(";"):
        tokens = part.split()
        if not tokens:
            continue
        kind = int(float(tokens[0]))
        if kind not in OBJECT_TYPES:
            raise ValueError(f"unknown Object-CXR object type {kind} in {part!r} (0 rectangle, 1 ellipse, 2 polygon)")
        values = [float(t) for t in tokens[1:]]
        if len(values) < 4 or len(values) % 2:
            raise ValueError(f"Object-CXR object {part!r}: expected x y pairs (at least two points)")
        xs, ys = values[0::2], values[1::2]
        x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
        boxes.append((x1, y1, x2 - x1, y2 - y1))
    return boxes


def read_object_cxr_labels(source, source_split: str) -> pd.DataFrame:
    rows = pd.read_csv(source, dtype={"image_name": str, "annotation": str}, keep_default_na=False)
    expected = {"image_name", "annotation"}
    if not expected <= set(rows.columns):
        raise ValueError(f"{source}: expected columns {sorted(expected)}, found {list(rows.columns)}")
    boxes = [parse_annotation(a) for a in rows["annotation"]]
    ids = [name.rsplit(".", 1)[0] for name in rows["image_name"]]
    return pd.DataFrame(
        {
            "image_id": ids,
            "image_name": rows["image_name"].tolist(),
            "group": ids,
            "source_split": source_split,
            "has_object": [int(bool(b)) for b in boxes],
            "boxes": boxes,
        }
    )


class ObjectCXR(DatasetAdapter):
    name = "object_cxr"
    title = "Object-CXR (foreign objects on chest X-rays)"
    homepage = "https://github.com/hlk-1135/object-CXR (JF Healthcare, MIDL 2020 challenge; images and train.csv/dev.csv)"
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
            frame = read_object_cxr_labels(self.folder / csv_name, source_split)
            frame["path"] = [str(self.folder / folder / name) for name in frame["image_name"]]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def label_columns() -> list[str]:
        return ["has_object"]
