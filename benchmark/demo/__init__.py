"""The demo ("smoke") suite: small synthetic chest X-ray datasets in the official layouts.

- :func:`generate_demo_suite` writes CheXpert, RSNA Pneumonia, COVIDx, SIIM-ACR, Object-CXR
  and MIMIC-CXR-JPG look-alikes whose labels, boxes and masks are caused by what is drawn;
- :data:`DEMO_DATASETS`: the dataset folder names it writes (MIMIC-CXR-JPG also writes the
  ``mimic-cxr/`` report folder);
- :func:`rle_encode` / :func:`rle_decode`: the official SIIM-ACR relative column-major RLE.

Numbers measured on the demo suite are NOT comparable with published results.
"""

from .generate import DEMO_DATASETS, GENERATOR_VERSION, MARKER_FILE, TRUTH_DIR, generate_demo_suite, read_marker
from .rle import rle_decode, rle_encode

__all__ = [
    "DEMO_DATASETS",
    "GENERATOR_VERSION",
    "MARKER_FILE",
    "TRUTH_DIR",
    "generate_demo_suite",
    "read_marker",
    "rle_decode",
    "rle_encode",
]
