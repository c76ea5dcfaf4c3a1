"""medvlp-bench: the benchmark harness for chest X-ray image encoders."""

from .layout import check_packages as _check_packages

__version__ = "0.1.0"
__distribution__ = "medvlp-bench"  # the marker of each of our top-level packages (benchmark/layout.py)

_check_packages()  # models / tasks of another package in their place: a clear error now, not an obscure one later
