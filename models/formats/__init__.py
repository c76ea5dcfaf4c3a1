"""Checkpoint formats and spec sources, one module each (see :mod:`models.formats.base`).

Every module in this package (except ``base`` and names starting with ``_``) is imported
here and registers itself, so adding a format means adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil

from models.formats.base import (
    FORMATS,
    SOURCES,
    CheckpointFormat,
    LoadOptions,
    SourceResult,
    SpecSource,
    detect_format,
    formats_by_priority,
    register_format,
    register_source,
)

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name != "base" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
    "FORMATS", "SOURCES", "CheckpointFormat", "LoadOptions", "SourceResult", "SpecSource",
    "detect_format", "formats_by_priority", "register_format", "register_source",
]
