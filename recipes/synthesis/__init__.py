"""Synthetic chest X-rays from MIMIC-CXR reports (Stable Diffusion 2.1 / RoentGen) and their quality.

``python -m recipes.synthesis generate ...`` writes a MIMIC-CXR-JPG-layout data root of
synthetic images (one per frontal image/report pair); ``python -m recipes.synthesis quality ...``
reports FID and MS-SSIM diversity. In Python: ``from recipes.synthesis.generate import
GenerationConfig, generate`` and ``recipes.synthesis.read_manifest(root)`` for the manifest.
(The ``generate`` function is not re-exported here: it would shadow the ``generate`` module.)
"""

from .generate import MANIFEST, MANIFEST_COLUMNS, PRESETS, GenerationConfig, finalize, read_manifest

__all__ = ["MANIFEST", "MANIFEST_COLUMNS", "PRESETS", "GenerationConfig", "finalize", "read_manifest"]
