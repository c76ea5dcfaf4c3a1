"""Deterministic file encoders (JPEG, PNG, DICOM, CSV, csv.gz) and atomic writes.

Everything is encoded in memory and written with :func:`write_atomic` (a temporary file in
the same folder, then ``os.replace``), so a killed generation never leaves a half-written
file under its final name. Encodings are byte-stable: fixed JPEG quality, no timestamps in
PNG or gzip (mtime 0), fixed DICOM dates and UIDs.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

JPEG_QUALITY = 90
DEMO_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's UID root for generated UIDs
DEMO_IMPLEMENTATION_UID = DEMO_UID_ROOT + "1"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary sibling file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(temporary, path)


def jpeg_bytes(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """Baseline JPEG of a uint8 grey (H, W) or RGB (H, W, 3) array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG of a uint8 grey/RGB or uint16 grey (mode I;16) array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def raster_bytes(pixels: np.ndarray, suffix: str, mode: str) -> bytes:
    """Encode a uint8 grey image as ``.jpg``/``.png`` stored in ``mode`` (``L``, ``RGB``, ``I;16``)."""
    if mode == "RGB":
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    elif mode == "I;16":
        pixels = pixels.astype(np.uint16) * np.uint16(257)  # 0..255 -> 0..65535
    elif mode != "L":
        raise ValueError(f"unsupported image mode {mode!r}")
    if suffix == ".jpg":
        if mode == "I;16":
            raise ValueError("JPEG cannot hold 16-bit pixels")
        return jpeg_bytes(pixels)
    if suffix == ".png":
        return png_bytes(pixels)
    raise ValueError(f"unsupported image suffix {suffix!r}")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV with ``\\n`` line endings, minimal quoting (as pandas' ``to_csv`` writes it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def gzip_bytes(data: bytes | str) -> bytes:
    """gzip with mtime 0 and no file name, so equal input gives equal bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as handle:
        handle.write(raw)
    return buffer.getvalue()


def json_text(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


def dicom_bytes(
    pixels: np.ndarray,
    *,
    sop_instance_uid: str,
    study_instance_uid: str,
    series_instance_uid: str,
    attributes: dict[str, object],
    monochrome1: bool = False,
    jpeg: bool = False,
) -> bytes:
    """A single-frame 8-bit grey DICOM (Secondary Capture, like the Kaggle releases).

    ``monochrome1``: store ``255 - pixels`` with PhotometricInterpretation MONOCHROME1 (a
    reader must invert it back). ``jpeg``: JPEG Baseline (1.2.840.10008.1.2.4.50)
    encapsulated pixel data, else uncompressed Explicit VR Little Endian. ``attributes``:
    further top-level elements by keyword (PatientID, ViewPosition, ...).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = JPEG_BASELINE if jpeg else EXPLICIT_VR_LITTLE_ENDIAN
    meta.ImplementationClassUID = DEMO_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDVLP_DEMO"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SECONDARY_CAPTURE_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = study_instance_uid
    ds.SeriesInstanceUID = series_instance_uid
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)

    stored = (255 - pixels) if monochrome1 else pixels
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in stored.shape)
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if jpeg:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([jpeg_bytes(np.ascontiguousarray(stored))])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PixelData = np.ascontiguousarray(stored, dtype=np.uint8).tobytes()
        ds["PixelData"].VR = "OB"

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
