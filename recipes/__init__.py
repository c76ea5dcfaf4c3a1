"""Recipes that PRODUCE encoders to benchmark: MIMIC-CXR data, image synthesis, pretraining."""

__distribution__ = "medvlp-bench"  # the marker of each of our top-level packages (benchmark/layout.py)
