"""Checkpoint formats and spec sources, one module each (see :mod:`models.formats.base`).

Every module of this package (``base`` holds the base classes) names its plug-in in
``FORMAT = ...`` or ``SOURCE = ...``; the scan below finds them (:mod:`benchmark.plugins`),
so adding a format means adding one file.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmark.plugins import discover
from models.formats.base import CheckpointFormat, LoadOptions, SourceResult, SpecSource, by_priority

_PACKAGE = sys.modules[__name__]
FORMATS: dict[str, CheckpointFormat] = discover(
    _PACKAGE, "FORMAT", key=lambda fmt: fmt.name, check=lambda obj: isinstance(obj, CheckpointFormat), skip=("base",)
)
SOURCES: dict[str, SpecSource] = discover(
    _PACKAGE, "SOURCE", key=lambda source: source.scheme, check=lambda obj: isinstance(obj, SpecSource), skip=("base",)
)


def formats_by_priority() -> list[CheckpointFormat]:
    """The checkpoint formats in the order detection tries them (lower ``priority`` first)."""
    return by_priority(FORMATS)


def detect_format(obj: Any) -> CheckpointFormat | None:
    for fmt in formats_by_priority():
        if fmt.detect(obj):
            return fmt
    return None


__all__ = [
    "FORMATS",
    "SOURCES",
    "CheckpointFormat",
    "LoadOptions",
    "SourceResult",
    "SpecSource",
    "detect_format",
    "formats_by_priority",
]
