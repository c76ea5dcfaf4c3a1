"""One declarative file per task (see docs/extending.md), the split recipes and the committed manifests."""

__distribution__ = "medvlp-bench"  # the marker of each of our top-level packages (benchmark/layout.py)
