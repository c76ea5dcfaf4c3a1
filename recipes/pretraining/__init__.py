"""Pretraining recipes: ConVIRT, GLoRIA and MGCA on MIMIC-CXR (image, report) pairs whose
images are real, synthetic (a synthetic MIMIC-CXR-JPG-layout image set) or a mix.

    python -m recipes.pretraining --method mgca --data-root /data \\
        --text-encoder /models/Bio_ClinicalBERT --output runs/mgca_real

``--method`` names a preset (``recipes.pretraining.presets``: convirt, convirt-original,
gloria, gloria-caption, mgca). The output checkpoint (``<output>/<preset>-<source>-<arch>.ckpt``)
is scored by ``run_benchmark.py --encoder`` with no conversion. See README, "Recipe: pretraining".
"""

METHODS = ("convirt", "gloria", "mgca")  # the implementations (recipes.pretraining.methods)

__all__ = ["METHODS"]
