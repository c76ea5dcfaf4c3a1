"""Recipes that PRODUCE encoders to benchmark: MIMIC-CXR data, image synthesis, pretraining."""
