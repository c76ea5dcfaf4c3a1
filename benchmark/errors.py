"""User-facing errors.

Every error a user can cause (missing data, a checkpoint that does not fit, a bad option)
is a :class:`BenchmarkError`. The CLI prints its message and exits with status 2; it never
shows a traceback for these.
"""


class BenchmarkError(Exception):
    """An error whose message tells the user what is wrong and what to do."""


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
