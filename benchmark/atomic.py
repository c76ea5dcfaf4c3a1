"""Atomic file writes: write a temporary file in the same folder, fsync, rename over the
target. A killed process leaves the old file or the new one, never half of one; a write that
fails (a full disk, an error while serialising) removes its temporary file. A process killed
mid-write can still leave one: :func:`remove_stale_temp_files` (run at the start of every
run on its output folder) removes those. Only the standard library, so light recipes
(synthesis) can import it too."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

# ".<name>.<pid>.tmp" (this module) or ".<name>.tmp" (older writers)
TEMP_NAME = re.compile(r"^\.(?P<name>.+?)(?:\.(?P<pid>\d+))?\.tmp$")
STALE_AFTER_S = 3600.0  # any temp file untouched this long is stale
DEAD_WRITER_GRACE_S = 60.0  # a temp file of a pid not alive here, untouched this long, is stale


def temp_path(path: Path) -> Path:
    """The temporary file an atomic write of ``path`` uses: ``.<name>.<pid>.tmp`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, fsync it and rename it over ``path``.
    On any failure the temporary file is removed and the error propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # gone after a successful replace


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # exists, owned by another user
    except (OSError, OverflowError):  # ProcessLookupError: no such process
        return False
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a leftover temporary file of an atomic write: named
    ``.<name>.<pid>.tmp`` or ``.<name>.tmp``, and either untouched for an hour, or written by
    a pid that is not alive on this machine and untouched for a minute. (The minute and the
    hour protect writers on other machines that share the folder, e.g. Slurm shards: a
    write in progress keeps its file's mtime fresh.)"""
    found = TEMP_NAME.match(Path(path).name)
    if not found:
        return False
    try:
        age = (time.time() if now is None else now) - Path(path).stat().st_mtime
    except OSError:
        return False
    if age > STALE_AFTER_S:
        return True
    pid = found.group("pid")
    return pid is not None and age > DEAD_WRITER_GRACE_S and not pid_alive(int(pid))


def remove_stale_temp_files(folder: Path, depth: int = 1) -> list[Path]:
    """Remove the stale temporary files (:func:`is_stale_temp`) in ``folder`` and its
    subfolders down to ``depth`` levels; returns the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    candidates = list(folder.glob(".*.tmp"))
    for d in range(1, depth + 1):
        candidates += folder.glob("*/" * d + ".*.tmp")
    for path in sorted(candidates):
        if path.is_file() and is_stale_temp(path):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
