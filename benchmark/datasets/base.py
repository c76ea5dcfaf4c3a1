"""Dataset adapters: read a dataset from its OFFICIAL on-disk layout into one table.

An adapter knows where the dataset's official folder sits under a data root, which files
prove it is there, how to explain the expected layout when it is not, and how to parse the
official label files into ``records()``: one row per image with

- ``image_id``: the stable id used by split manifests (never a row number);
- ``path``: absolute path of the image file;
- ``group``: the patient (or image) the row belongs to;
- ``source_split``: the official partition the image comes from (``train`` or ``test``);
- the dataset's label / annotation columns.

Adding a dataset = adding one module in this package that subclasses :class:`DatasetAdapter`
and names the subclass in ``DATASET = ...`` (see :mod:`benchmark.plugins`).

Label files are validated row by row while they are parsed: a value the official format
does not allow raises :class:`~benchmark.errors.LabelFileError` naming the file, the line
(1-based, the header is line 1), the value and what is allowed. With ``skip_bad_rows``
(``--skip-bad-rows``) the adapter instead leaves out the IMAGE each bad row belongs to (its
annotation would be incomplete), warns with the list and records it in :meth:`version`,
which goes into every result.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..data_roots import DataRoots
from ..errors import BadRowsSkippedWarning, DatasetNotFoundError, LabelFileError

SKIP_HINT = "fix the row, or pass --skip-bad-rows to leave the images of bad rows out, recorded in results"
LISTED_IN_VERSION = 20  # skipped rows named in version() (all are counted)


def source_name(source) -> str:
    """A label file's name for messages: the path, or a handle's ``name``."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", source))


def csv_line(index: int) -> int:
    """The editor line number of data row ``index`` (0-based) of a one-header-line CSV read
    with ``skip_blank_lines=False``."""
    return int(index) + 2


@dataclass(frozen=True)
class BadRow:
    file: str
    line: int  # 1-based line in the file; the header is line 1
    value: str  # the offending value, as written
    problem: str  # what is wrong with it
    allowed: str  # what the format allows there
    image_id: str | None = None  # the image the row belongs to, when it can be told

    def message(self) -> str:
        return f"{self.file}, line {self.line}: {self.problem}; allowed: {self.allowed}"

    def short(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]} line {self.line}: {self.problem}"


class BadRows:
    """Where parsers report bad rows: raises :class:`LabelFileError` at the first one, or,
    with ``skip``, collects them (the parser then leaves out their images)."""

    def __init__(self, skip: bool = False):
        self.skip = skip
        self.rows: list[BadRow] = []

    def add(self, file, line: int, value, problem: str, allowed: str, image_id: str | None = None) -> None:
        row = BadRow(source_name(file), int(line), str(value), problem, allowed, image_id)
        if not self.skip:
            raise LabelFileError(f"{row.message()} ({SKIP_HINT})")
        self.rows.append(row)

    def image_ids(self) -> set[str]:
        return {row.image_id for row in self.rows if row.image_id}


class DatasetAdapter(ABC):
    name: ClassVar[str]  # short id used in task specs and manifests
    title: ClassVar[str]
    homepage: ClassVar[str]  # where the dataset is obtained
    folder_names: ClassVar[tuple[str, ...]]  # official folder names under a data root
    required_files: ClassVar[tuple[str, ...]]  # relative to the dataset folder
    layout: ClassVar[str]  # human-readable tree of the official layout

    def __init__(self, folder: str | Path, *, skip_bad_rows: bool = False):
        self.folder = Path(folder)
        self.skip_bad_rows = skip_bad_rows
        self.bad_rows = BadRows(skip_bad_rows)  # filled by read_records under skip_bad_rows

    # ------------------------------------------------------------------ locating
    @classmethod
    def candidates(cls, roots: DataRoots) -> list[Path]:
        if cls.name in roots.overrides:
            return [roots.overrides[cls.name]]
        if roots.root is None:
            return []
        return [roots.root / name for name in cls.folder_names] + [roots.root]

    @classmethod
    def holds_required_files(cls, candidate: Path) -> bool:
        return all((candidate / f).exists() for f in cls.required_files)

    @classmethod
    def find_folder(cls, roots: DataRoots) -> Path | None:
        for candidate in cls.candidates(roots):
            if cls.holds_required_files(candidate):
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
        return cls(folder, skip_bad_rows=roots.skip_bad_rows)

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
        self.bad_rows = BadRows(self.skip_bad_rows)
        frame = self.read_records()
        missing_columns = {"image_id", "path", "group", "source_split"} - set(frame.columns)
        assert not missing_columns, f"{type(self).__name__}.read_records lacks {missing_columns}"
        if self.bad_rows.rows:
            warnings.warn(self.skipped_rows_message(), BadRowsSkippedWarning, stacklevel=2)
        return frame.reset_index(drop=True)

    @abstractmethod
    def read_records(self) -> pd.DataFrame:
        """Parse the official label files into the table described in the module docstring,
        reporting every bad row to ``self.bad_rows`` (which raises unless skipping)."""

    def skipped_rows_message(self) -> str:
        rows = self.bad_rows.rows
        lines = [
            f"{self.title}: --skip-bad-rows left out {len(self.bad_rows.image_ids())} image(s) "
            f"for {len(rows)} bad label-file row(s):"
        ]
        lines += [f"  {row.message()}" for row in rows]
        return "\n".join(lines)

    def skipped_rows_note(self) -> str:
        """What ``--skip-bad-rows`` left out, for :meth:`version` (and so for every result)."""
        if not self.skip_bad_rows:
            return ""
        self.records  # noqa: B018  (parsing fills self.bad_rows)
        rows = self.bad_rows.rows
        if not rows:
            return "; --skip-bad-rows: no bad rows"
        listed = "; ".join(row.short() for row in rows[:LISTED_IN_VERSION])
        more = f"; and {len(rows) - LISTED_IN_VERSION} more" if len(rows) > LISTED_IN_VERSION else ""
        return (
            f"; --skip-bad-rows skipped {len(rows)} bad row(s), {len(self.bad_rows.image_ids())} image(s) left out: "
            f"{listed}{more}"
        )

    def label_files(self) -> list[Path]:
        return [self.folder / f for f in self.required_files if (self.folder / f).is_file()]

    def release(self) -> str | None:
        """The official release this folder holds, for datasets published in several (CheXpert:
        full resolution or small); recorded in every result as ``data.release``. None: one release."""
        return None

    def version(self) -> str:
        """A description of the dataset version (label-file names and content hash)."""
        digest = hashlib.sha256()
        for path in self.label_files():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return f"{self.folder.name}; label files sha256 {digest.hexdigest()[:16]}{self.skipped_rows_note()}"
