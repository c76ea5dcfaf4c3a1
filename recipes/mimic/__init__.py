"""MIMIC-CXR(-JPG): report sections and (image, report) pairs, shared by synthesis and pretraining."""

from .pairs import MimicLayout, load_pairs
from .reports import extract_sections, read_report

__all__ = ["MimicLayout", "load_pairs", "extract_sections", "read_report"]
