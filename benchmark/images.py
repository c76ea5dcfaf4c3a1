"""Decode chest radiographs to 8-bit grey arrays, as the protocol prescribes.

- JPEG / PNG: read as 8-bit grey. 16-bit PNGs are max-scaled to 0-255; RGB is converted to
  luminance.
- DICOM: the stored pixel array is max-scaled to 0-255 (no VOI windowing, as MGCA does) and
  inverted when PhotometricInterpretation is MONOCHROME1 (there, high values are dark).
  JPEG-compressed DICOMs (SIIM-ACR) need a pixel-data handler: pylibjpeg-libjpeg or Pillow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageDecodeError, one_line

DICOM_SUFFIXES = {".dcm", ".dicom"}


def max_scale_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale a non-negative pixel array so its maximum becomes 255 (MGCA's convertScaleAbs)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    pixels = pixels - min(0.0, float(pixels.min()))  # signed data: shift to >= 0 first
    peak = float(pixels.max())
    if peak <= 0:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return np.clip(np.rint(pixels * (255.0 / peak)), 0, 255).astype(np.uint8)


def _file_size(path) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def dicom_failure(path, error: BaseException, syntax=None) -> str:
    """The cause, in words, of a DICOM that pydicom could not read or decode."""
    text = one_line(error, limit=200)
    size = _file_size(path)
    if size == 0:
        return "empty file (0 bytes), not a DICOM"
    from pydicom.errors import InvalidDicomError

    if isinstance(error, InvalidDicomError):
        return f"not a DICOM file (no DICM header: truncated, or another format; {size} bytes) [pydicom: {text}]"
    if (
        isinstance(error, EOFError)
        or "less than expected" in text
        or "no 'Pixel Data'" in text
        or "truncat" in text.lower()
    ):
        return f"truncated or corrupted DICOM ({size} bytes; its pixel data is incomplete) [pydicom: {text}]"
    name = getattr(syntax, "name", None)
    if "exceptions were raised by all available plugins" in text:  # a handler is there and failed on the data
        return (
            f"corrupted compressed pixel data{f' ({name})' if name else ''}: "
            f"the decoder failed ({size} bytes) [pydicom: {text}]"
        )
    if (
        syntax is not None
        and getattr(syntax, "is_compressed", False)
        and any(w in text.lower() for w in ("handler", "plugin", "missing"))
    ):
        return (
            f"no pixel-data handler for its transfer syntax {name}: `pip install pylibjpeg==2.1.0 "
            f"pylibjpeg-libjpeg==2.5.0` (scripts/setup.sh installs them) [pydicom: {text}]"
        )
    return (
        f"cannot decode DICOM pixel data{f' (transfer syntax {name})' if name else ''}: {type(error).__name__}: {text}"
    )


def read_dicom_grey(path: str | Path) -> np.ndarray:
    """Read a DICOM file as an 8-bit grey image (max-scaled, MONOCHROME1 inverted).

    Raises :class:`ImageDecodeError` (one line: file and cause; a truncated or non-DICOM
    file is named as such, a compressed one without a pixel-data handler gets the fix)."""
    import pydicom

    dataset = None
    try:
        dataset = pydicom.dcmread(str(path))
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises several types for unsupported encodings
        syntax = None
        try:
            syntax = dataset.file_meta.TransferSyntaxUID
        except Exception:
            pass
        raise ImageDecodeError(path, dicom_failure(path, error, syntax)) from error
    if pixels.ndim == 3:  # multi-frame or colour: take the first frame / luminance
        pixels = pixels[0] if dataset.get("NumberOfFrames", 1) > 1 else pixels.mean(axis=-1)
    image = max_scale_to_uint8(pixels)
    if str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        image = 255 - image
    return image


def raster_failure(path, error: BaseException) -> str:
    """The cause, in words, of a PNG/JPEG that Pillow could not read."""
    text = one_line(error, limit=200)
    size = _file_size(path)
    if size == 0:
        return "empty file (0 bytes)"
    if isinstance(error, UnidentifiedImageError):
        return f"not a readable PNG/JPEG image (unknown format or truncated header; {size} bytes)"
    if "truncat" in text.lower() or isinstance(error, (EOFError, SyntaxError)):
        return f"truncated or corrupted image file ({size} bytes) [Pillow: {text}]"
    return f"{type(error).__name__}: {text}"


def read_raster_grey(path: str | Path) -> np.ndarray:
    """Read a JPEG/PNG as 8-bit grey; 16-bit images are max-scaled.

    Raises :class:`ImageDecodeError` (one line: file and cause)."""
    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return max_scale_to_uint8(np.asarray(image))
            if image.mode != "L":
                image = image.convert("L")
            return np.asarray(image, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # Pillow's errors for bad files
        raise ImageDecodeError(path, raster_failure(path, error)) from error


def read_grey(path: str | Path) -> np.ndarray:
    """Read any supported radiograph file as a (H, W) uint8 array.

    Every failure is an :class:`ImageDecodeError` whose message is one line naming the file
    and the cause (also when raised in a DataLoader worker)."""
    path = Path(path)
    if not path.exists():
        raise ImageDecodeError(path, "file not found")
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom_grey(path)
    return read_raster_grey(path)
