"""User-facing errors.

Every error a user can cause (missing data, a checkpoint that does not fit, a bad option)
is a :class:`BenchmarkError`. The CLI prints its message and exits with status 2; it never
shows a traceback for these.
"""

import re

_WORKER_WRAPPER = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")


def worker_original_message(text: str, cls: type) -> str:
    """The original message of an exception a DataLoader worker raised.

    torch re-raises a worker's exception in the main process as ``cls(text)``, where
    ``text`` is "Caught X in DataLoader worker process N.\nOriginal Traceback ...", the
    worker's whole traceback ending in "module.X: original message". Returns that original
    message (``text`` unchanged when it is not such a wrapper)."""
    if not _WORKER_WRAPPER.match(text):
        return text
    marker = f"{cls.__module__}.{cls.__qualname__}: "
    at = text.rfind(marker)
    return text[at + len(marker) :].strip() if at >= 0 else text


class BenchmarkError(Exception):
    """An error whose message tells the user what is wrong and what to do.

    Raised in a DataLoader worker, it reaches the main process with its own message again
    (not the worker's traceback): see :func:`worker_original_message`."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (worker_original_message(args[0], type(self)),)
        super().__init__(*args)


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with its whitespace runs (newlines included) collapsed, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ImageDecodeError(BenchmarkError):
    """An image file cannot be read or decoded.

    ``str(error)`` is one line, "cannot read image PATH: CAUSE", also after a DataLoader
    worker re-raised it (torch rebuilds it from its message string). ``path`` and ``cause``
    hold the parts (``cause`` None when rebuilt from a message that does not parse)."""

    def __init__(self, path, cause: str | None = None):
        if cause is None:  # rebuilt from a message (DataLoader re-raise)
            message = one_line(worker_original_message(str(path), type(self)), limit=2000)
            found = re.match(r"^cannot read image (.+?): (.*)$", message)
            self.path, self.cause = (found.group(1), found.group(2)) if found else (None, None)
        else:
            self.path, self.cause = str(path), one_line(cause)
            message = f"cannot read image {self.path}: {self.cause}"
        Exception.__init__(self, message)

    def __reduce__(self):
        return (type(self), (str(self),))


class DatasetNotFoundError(BenchmarkError):
    """A dataset is missing or not in its official layout."""


class CheckpointError(BenchmarkError):
    """A checkpoint cannot be read or does not match an architecture."""


class ConfigError(BenchmarkError):
    """An option or configuration value is invalid."""


class LabelFileError(BenchmarkError, ValueError):
    """A row of an official label file holds a value its format does not allow.

    The message names the file, the row (1-based line number as an editor shows it, the
    header being line 1), the offending value and what is allowed. (Also a ``ValueError``,
    which the low-level parsers raised before.)"""


class BadRowsSkippedWarning(UserWarning):
    """``--skip-bad-rows`` left images out because rows of their label file were bad."""
