"""Dataset adapters: read a dataset from its OFFICIAL on-disk layout into one table.

An adapter knows where the dataset's official folder sits under a data root, which files
prove it is there, how to explain the expected layout when it is not, and how to parse the
official label files into ``records()``: one row per image with

- ``image_id``: the stable id used by split manifests (never a row number);
- ``path``: absolute path of the image file;
- ``group``: the patient (or image) the row belongs to;
- ``source_split``: the official partition the image comes from (``train`` or ``test``);
- the dataset's label / annotation columns.

Adding a dataset = adding one module in this package that subclasses :class:`DatasetAdapter`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..data_roots import DataRoots
from ..errors import DatasetNotFoundError


class DatasetAdapter(ABC):
    name: ClassVar[str]  # short id used in task specs and manifests
    title: ClassVar[str]
    homepage: ClassVar[str]  # where the dataset is obtained
    folder_names: ClassVar[tuple[str, ...]]  # official folder names under a data root
    required_files: ClassVar[tuple[str, ...]]  # relative to the dataset folder
    layout: ClassVar[str]  # human-readable tree of the official layout

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    # ------------------------------------------------------------------ locating
    @classmethod
    def candidates(cls, roots: DataRoots) -> list[Path]:
        if cls.name in roots.overrides:
            return [roots.overrides[cls.name]]
        if roots.root is None:
            return []
        return [roots.root / name for name in cls.folder_names] + [roots.root]

    @classmethod
    def find_folder(cls, roots: DataRoots) -> Path | None:
        for candidate in cls.candidates(roots):
            if all((candidate / f).exists() for f in cls.required_files):
                return candidate
        return None

    @classmethod
    def is_present(cls, roots: DataRoots) -> bool:
        return cls.find_folder(roots) is not None

    @classmethod
    def locate(cls, roots: DataRoots) -> "DatasetAdapter":
        folder = cls.find_folder(roots)
        if folder is None:
            raise DatasetNotFoundError(cls.missing_message(roots))
        return cls(folder)

    @classmethod
    def missing_message(cls, roots: DataRoots) -> str:
        lines = [f"{cls.title} ({cls.name}) was not found."]
        if roots.root is None and cls.name not in roots.overrides:
            lines.append(
                "No data root is set: pass --data-root DIR, set MEDVLP_DATA_ROOT, or write "
                'data_root = "DIR" in ./medvlp-bench.toml or ~/.config/medvlp-bench/config.toml.'
            )
        else:
            lines.append(f"Data root: {roots.for_dataset(cls.name)} (from {roots.source}). Looked for:")
            for candidate in cls.candidates(roots):
                missing = [f for f in cls.required_files if not (candidate / f).exists()]
                lines.append(f"  {candidate}: missing {', '.join(missing)}")
        lines.append("Expected official layout under the data root:")
        lines.extend("  " + line for line in cls.layout.strip("\n").splitlines())
        lines.append(f"Obtain it from: {cls.homepage}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ content
    @cached_property
    def records(self) -> pd.DataFrame:
        frame = self.read_records()
        missing_columns = {"image_id", "path", "group", "source_split"} - set(frame.columns)
        assert not missing_columns, f"{type(self).__name__}.read_records lacks {missing_columns}"
        return frame.reset_index(drop=True)

    @abstractmethod
    def read_records(self) -> pd.DataFrame:
        """Parse the official label files into the table described in the module docstring."""

    def label_files(self) -> list[Path]:
        return [self.folder / f for f in self.required_files if (self.folder / f).is_file()]

    def version(self) -> str:
        """A description of the dataset version (label-file names and content hash)."""
        digest = hashlib.sha256()
        for path in self.label_files():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return f"{self.folder.name}; label files sha256 {digest.hexdigest()[:16]}"
