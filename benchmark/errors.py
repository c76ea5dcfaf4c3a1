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
