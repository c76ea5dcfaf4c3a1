"""Is every image file a run will read complete? A cheap check of each file's two ends.

Decoding every image before a run would cost as long as the run's own decoding, so the
pre-flight check (:func:`benchmark.runner.check_images`) reads only each file's header and
its last bytes, which catches empty, foreign and truncated files in seconds on the real
datasets (a thread pool; about 0.1 ms per JPEG/PNG and 1 ms per DICOM here):

- JPEG: starts with the SOI marker ``FF D8 FF`` and its last KiB holds the EOI marker
  ``FF D9`` (a truncated JPEG loses it);
- PNG: the 8-byte signature, and the file ends with the ``IEND`` chunk;
- DICOM: the header parses up to the pixel data (pydicom, ``stop_before_pixels``); native
  pixel data must fit in the file (rows x columns x samples x bits allocated / 8 bytes after
  the header), encapsulated (compressed) pixel data must end with the sequence delimiter
  ``(FFFE,E0DD)``;
- anything else: Pillow identifies the format from the header.

A file can pass and still fail to decode (corrupt bytes in the middle); the decoder then
stops the run with the same one-line :class:`~benchmark.errors.ImageDecodeError`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import one_line
from .images import DICOM_SUFFIXES

JPEG_SOI, JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0, little endian
TAIL = 1024


def _ends(path: str) -> tuple[int, bytes, bytes]:
    with open(path, "rb") as handle:
        head = handle.read(16)
        size = os.fstat(handle.fileno()).st_size
        handle.seek(max(0, size - TAIL))
        tail = handle.read(TAIL)
    return size, head, tail


def _dicom_problem(path: str, size: int) -> str | None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open(path, "rb") as handle:
            dataset = pydicom.dcmread(handle, stop_before_pixels=True)
            pixel_offset = handle.tell()
    except InvalidDicomError:
        return f"not a DICOM file (no DICM header: truncated, or another format; {size} bytes)"
    except Exception as error:  # a header cut short raises EOFError, struct.error, ...
        return f"truncated or corrupted DICOM header ({size} bytes) [pydicom: {one_line(error, limit=160)}]"
    syntax = getattr(dataset.file_meta, "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        with open(path, "rb") as handle:
            handle.seek(max(0, size - len(SEQUENCE_DELIMITER)))
            if handle.read() != SEQUENCE_DELIMITER:
                return (
                    f"truncated or corrupted DICOM ({size} bytes; "
                    "its compressed pixel data does not end with the sequence delimiter)"
                )
        return None
    try:
        expected = (
            int(dataset.Rows)
            * int(dataset.Columns)
            * int(dataset.get("SamplesPerPixel", 1))
            * int(dataset.get("NumberOfFrames", 1) or 1)
            * int(dataset.BitsAllocated)
            // 8
        )
    except (AttributeError, TypeError, ValueError):
        return f"truncated or corrupted DICOM header ({size} bytes; no Rows, Columns or BitsAllocated before its end)"
    # the Pixel Data element's own tag, VR and length take 12 bytes (explicit VR) or 8 (implicit)
    if size - pixel_offset < expected + 8:
        return (
            f"truncated or corrupted DICOM ({size} bytes; its pixel data is incomplete: "
            f"{max(0, size - pixel_offset)} bytes after the header, {expected} expected)"
        )
    return None


def header_problem(path: str | Path) -> str | None:
    """Why the file at ``path`` cannot be a complete image, or None (see the module docstring)."""
    path = str(path)
    try:
        size, head, tail = _ends(path)
    except FileNotFoundError:
        return "file not found"
    except OSError as error:
        return f"cannot open the file: {one_line(error, limit=160)}"
    if size == 0:
        return "empty file (0 bytes)"
    if Path(path).suffix.lower() in DICOM_SUFFIXES:
        return _dicom_problem(path, size)
    if head.startswith(JPEG_SOI):
        return None if JPEG_EOI in tail else f"truncated JPEG ({size} bytes; no end-of-image marker)"
    if head.startswith(PNG_SIGNATURE):
        return None if tail.endswith(PNG_END) else f"truncated PNG ({size} bytes; no IEND chunk at its end)"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return f"not a readable PNG/JPEG image (unknown format or truncated header; {size} bytes)"


def header_problems(paths: list[str], threads: int = 8) -> list[tuple[str, str]]:
    """``(path, problem)`` for every file of ``paths`` that fails :func:`header_problem`, in order."""
    if not paths:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(paths)))) as pool:
        found = list(pool.map(header_problem, paths, chunksize=64))
    return [(p, problem) for p, problem in zip(paths, found) if problem]
