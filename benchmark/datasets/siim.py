"""SIIM-ACR Pneumothorax Segmentation (Kaggle) in its official layout.

Official layout::

    siim-acr-pneumothorax/
      train-rle.csv     header "ImageId, EncodedPixels" (note the leading space; a variant
                        without it also parses), values "<ImageId>, -1" (no pneumothorax) or
                        "<ImageId>, <start> <length> ..." (values may carry a leading space)
      dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<ImageId>.dcm

The run-length encoding is the competition's own: RELATIVE (each ``start`` counts the pixels
after the end of the previous run) and COLUMN-major, on the image's pixel grid (1024 x 1024
in the real release). An image with several rows has the UNION of their masks
(torchxrayvision keeps only the last row, a known bug avoided here); ``-1`` rows are
negatives, compared after stripping spaces (MGCA compared ``"-1"`` and ``" -1"``
inconsistently, another bug avoided here). Records are per image:
``Pneumothorax`` (0/1) and ``rle`` (the tuple of the image's encodings, empty for negatives).

Every row is validated as it is read (:class:`~benchmark.errors.LabelFileError` with file,
line and value), cheaply, without building masks: ``ImageId`` is set and ``EncodedPixels``
is ``-1`` or an even number of non-negative integers whose runs end inside the official
1024 x 1024 image (the sum of all offsets and lengths is at most 1024 * 1024; the adapter
does not open the DICOMs while reading labels, so it uses the official size).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import LabelFileError
from .base import BadRows, DatasetAdapter, csv_line, source_name

RLE_FILE = "train-rle.csv"
IMAGES_DIR = "dicom-images-train"
NEGATIVE = "-1"
IMAGE_SIDE = 1024  # every official SIIM-ACR image is 1024 x 1024
RLE_ALLOWED = (
    "-1 (no pneumothorax) or an even number of non-negative integers 'start length ...' "
    "whose runs end inside the {side}x{side} image"
)


def siim_rle_problem(text: str, side: int = IMAGE_SIDE) -> str | None:
    """What is wrong with one EncodedPixels value (stripped), or None. Cheap: no mask."""
    if text == NEGATIVE:
        return None
    if not text:
        return "EncodedPixels is empty"
    tokens = text.split()
    bad = next((t for t in tokens if not (t.isascii() and t.isdigit())), None)  # no sign, no point
    if bad is not None:
        return f"EncodedPixels holds {bad!r}, not a non-negative integer"
    if len(tokens) % 2:
        return f"EncodedPixels has {len(tokens)} numbers, an odd count (they come in start/length pairs)"
    end = sum(int(t) for t in tokens)  # relative starts: the last run ends at the sum of all values
    if end > side * side:
        return f"EncodedPixels runs to pixel {end}, past the {side}x{side} image's {side * side} pixels"
    return None


def decode_siim_rle(encoding: str, height: int, width: int) -> np.ndarray:
    """One official encoding -> (height, width) bool mask. ``-1`` / empty -> empty mask."""
    text = str(encoding).strip()
    mask = np.zeros(height * width, dtype=bool)
    if text in ("", NEGATIVE):
        return mask.reshape(height, width)
    try:
        values = [int(v) for v in text.split()]
    except ValueError:
        values = [-1]
    if len(values) % 2 or min(values) < 0:
        raise LabelFileError(
            f"not a SIIM run-length encoding: {text[:60]!r}; allowed: {RLE_ALLOWED.format(side=height)}"
        )
    position = 0
    for offset, length in zip(values[0::2], values[1::2]):
        position += offset  # relative: counted from the end of the previous run
        if position + length > height * width:
            raise LabelFileError(
                f"SIIM run-length encoding {text[:60]!r} runs past pixel {height * width} ({height}x{width} image)"
            )
        mask[position : position + length] = True
        position += length
    # column-major pixel numbering: the flat index runs down a column first
    return mask.reshape(width, height).T.copy()


def siim_mask(encodings, height: int, width: int) -> np.ndarray:
    """The UNION of an image's encodings (several rows = several regions)."""
    mask = np.zeros((height, width), dtype=bool)
    for encoding in encodings:
        mask |= decode_siim_rle(encoding, height, width)
    return mask


def read_siim_rle(source, bad_rows: BadRows | None = None, image_side: int = IMAGE_SIDE) -> pd.DataFrame:
    """Parse ``train-rle.csv`` (path, .gz path or handle) into one record per image,
    validating every row (see the module docstring). ``bad_rows`` decides what a bad row
    does: raise (default) or be collected, its image then left out."""
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    name = source_name(source)
    rows = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False)
    rows.columns = [c.strip() for c in rows.columns]
    if not {"ImageId", "EncodedPixels"} <= set(rows.columns):
        raise LabelFileError(
            f"{name}, line 1: expected the columns 'ImageId, EncodedPixels', found {list(rows.columns)}"
        )
    allowed = RLE_ALLOWED.format(side=image_side)
    encodings: dict[str, list[str]] = {}
    for index, (image_id, encoding) in enumerate(rows[["ImageId", "EncodedPixels"]].itertuples(index=False)):
        image_id, encoding = str(image_id).strip(), str(encoding).strip()
        if not image_id and not encoding:
            continue  # a blank line
        if not image_id:
            bad_rows.add(
                name, csv_line(index), "", "ImageId is empty", "the image's SOPInstanceUID (its DICOM's file name)"
            )
            continue
        problem = siim_rle_problem(encoding, image_side)
        if problem is not None:
            bad_rows.add(name, csv_line(index), encoding[:60], problem, allowed, image_id=image_id)
            continue
        encodings.setdefault(image_id, [])
        if encoding != NEGATIVE:
            encodings[image_id].append(encoding)
    skipped = bad_rows.image_ids()
    ids = [i for i in encodings if i not in skipped]
    return pd.DataFrame(
        {
            "image_id": ids,
            "group": ids,
            "source_split": "train",
            "Pneumothorax": [int(bool(encodings[i])) for i in ids],
            "rle": [tuple(encodings[i]) for i in ids],
        }
    )


class SIIMPneumothorax(DatasetAdapter):
    name = "siim"
    title = "SIIM-ACR Pneumothorax Segmentation"
    homepage = "https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation (Kaggle; the DICOMs and train-rle.csv)"
    folder_names = ("siim-acr-pneumothorax", "siim-acr-pneumothorax-segmentation", "SIIM_Pneumothorax")
    required_files = (RLE_FILE, IMAGES_DIR)
    layout = """
siim-acr-pneumothorax/
  train-rle.csv        ImageId, EncodedPixels (relative column-major RLE; -1 = no pneumothorax)
  dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<ImageId>.dcm
"""

    def read_records(self) -> pd.DataFrame:
        records = read_siim_rle(self.folder / RLE_FILE, self.bad_rows)
        found: dict[str, str] = {}
        for directory, _, files in os.walk(self.folder / IMAGES_DIR):
            for name in files:
                if name.endswith(".dcm"):
                    found[name[:-4]] = os.path.join(directory, name)
        # images listed without a DICOM keep a path that names where it was expected
        records["path"] = [
            found.get(i, str(self.folder / IMAGES_DIR / "<missing>" / f"{i}.dcm")) for i in records["image_id"]
        ]
        return records

    @staticmethod
    def label_columns() -> list[str]:
        return ["Pneumothorax"]


DATASET = SIIMPneumothorax  # this module's plug-in (benchmark/plugins.py)
