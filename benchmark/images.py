"""Decode chest radiographs to 8-bit grey arrays, as the protocol prescribes.

- JPEG / PNG: read as 8-bit grey. 16-bit PNGs are max-scaled to 0-255; RGB is converted to
  luminance.
- DICOM: the stored pixel array is max-scaled to 0-255 (no VOI windowing, as MGCA does) and
  inverted when PhotometricInterpretation is MONOCHROME1 (there, high values are dark).
  JPEG-compressed DICOMs (SIIM-ACR) need a pixel-data handler: pylibjpeg-libjpeg or Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .errors import BenchmarkError

DICOM_SUFFIXES = {".dcm", ".dicom"}


def max_scale_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale a non-negative pixel array so its maximum becomes 255 (MGCA's convertScaleAbs)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    pixels = pixels - min(0.0, float(pixels.min()))  # signed data: shift to >= 0 first
    peak = float(pixels.max())
    if peak <= 0:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return np.clip(np.rint(pixels * (255.0 / peak)), 0, 255).astype(np.uint8)


def read_dicom_grey(path: str | Path) -> np.ndarray:
    """Read a DICOM file as an 8-bit grey image (max-scaled, MONOCHROME1 inverted)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(str(path))
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises several types for unsupported encodings
        syntax = ""
        try:
            syntax = f" (transfer syntax {dataset.file_meta.TransferSyntaxUID.name})"
        except Exception:
            pass
        raise BenchmarkError(
            f"Cannot decode DICOM pixel data in {path}{syntax}: {error}. JPEG-compressed DICOMs "
            "need a pixel-data handler: `pip install pylibjpeg==2.1.0 pylibjpeg-libjpeg==2.5.0` "
            "(scripts/setup.sh installs them)."
        ) from error
    if pixels.ndim == 3:  # multi-frame or colour: take the first frame / luminance
        pixels = pixels[0] if dataset.get("NumberOfFrames", 1) > 1 else pixels.mean(axis=-1)
    image = max_scale_to_uint8(pixels)
    if str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        image = 255 - image
    return image


def read_raster_grey(path: str | Path) -> np.ndarray:
    """Read a JPEG/PNG as 8-bit grey; 16-bit images are max-scaled."""
    with Image.open(path) as image:
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            return max_scale_to_uint8(np.asarray(image))
        if image.mode != "L":
            image = image.convert("L")
        return np.asarray(image, dtype=np.uint8).copy()


def read_grey(path: str | Path) -> np.ndarray:
    """Read any supported radiograph file as a (H, W) uint8 array."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"Image file not found: {path}")
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom_grey(path)
    return read_raster_grey(path)
