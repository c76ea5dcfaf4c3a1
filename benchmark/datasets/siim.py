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
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .base import DatasetAdapter

RLE_FILE = "train-rle.csv"
IMAGES_DIR = "dicom-images-train"
NEGATIVE = "-1"


def decode_siim_rle(encoding: str, height: int, width: int) -> np.ndarray:
    """One official encoding -> (height, width) bool mask. ``-1`` / empty -> empty mask."""
    text = str(encoding).strip()
    mask = np.zeros(height * width, dtype=bool)
    if text in ("", NEGATIVE):
        return mask.reshape(height, width)
    values = [int(v) for v in text.split()]
    if len(values) % 2 or min(values) < 0:
        raise ValueError(f"not a SIIM run-length encoding: {text[:60]!r}")
    position = 0
    for offset, length in zip(values[0::2], values[1::2]):
        position += offset  # relative: counted from the end of the previous run
        if position + length > height * width:
            raise ValueError(f"SIIM run-length encoding runs past pixel {height * width} ({height}x{width} image)")
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


def read_siim_rle(source) -> pd.DataFrame:
    """Parse ``train-rle.csv`` (path, .gz path or handle) into one record per image."""
    rows = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    rows.columns = [c.strip() for c in rows.columns]
    if not {"ImageId", "EncodedPixels"} <= set(rows.columns):
        raise ValueError(f"{source}: expected columns 'ImageId, EncodedPixels', found {list(rows.columns)}")
    encodings: dict[str, list[str]] = {}
    for image_id, encoding in rows[["ImageId", "EncodedPixels"]].itertuples(index=False):
        image_id, encoding = str(image_id).strip(), str(encoding).strip()
        encodings.setdefault(image_id, [])
        if encoding not in ("", NEGATIVE):
            encodings[image_id].append(encoding)
    ids = list(encodings)
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
        records = read_siim_rle(self.folder / RLE_FILE)
        found: dict[str, str] = {}
        for directory, _, files in os.walk(self.folder / IMAGES_DIR):
            for name in files:
                if name.endswith(".dcm"):
                    found[name[:-4]] = os.path.join(directory, name)
        # images listed without a DICOM keep a path that names where it was expected
        records["path"] = [found.get(i, str(self.folder / IMAGES_DIR / "<missing>" / f"{i}.dcm")) for i in records["image_id"]]
        return records

    @staticmethod
    def label_columns() -> list[str]:
        return ["Pneumothorax"]
