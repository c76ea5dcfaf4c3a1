"""The benchmark's metrics as local Hugging Face ``evaluate`` modules, loadable offline by path.

    import evaluate
    from benchmark.evaluate_modules import path

    dice = evaluate.load(path("dice"))               # a folder shipped in this package; nothing is downloaded
    dice.compute(predictions=probability_maps, references=masks)

Each module (``<name>/<name>.py``) is an ``evaluate.Metric`` whose ``_compute`` calls the harness's
own metric function, so it returns exactly what a unit's result records:

- ``macro_auc``: :func:`benchmark.metrics.classification_metrics` (AUC per class, then the mean
  over the classes whose test labels have both values; multi-label, binary or multi-class
  one-vs-rest, the latter with accuracy);
- ``accuracy``: :func:`benchmark.metrics.accuracy` (top-1 of the arg-max class);
- ``dice``: :func:`benchmark.seg_metrics.mask_counts` at threshold 0.5 and
  :func:`benchmark.seg_metrics.segmentation_metrics`: ``dice`` (the reference rule),
  ``dice_positive``, ``specificity``, ``dice_positive_dataset`` and the trivial heads' floors;
- ``detection_map``: :func:`benchmark.det_metrics.unit_detection_metrics`: ``map`` (all test
  images) and ``map_reference`` (MGCA's rule), mAP@[0.40:0.75] with the per-threshold APs.

``evaluate.load`` copies a module into its modules cache (``HF_MODULES_CACHE``) and imports it
from there; the module then imports ``benchmark``, so medvlp-bench must be installed (or on
``sys.path``) in that interpreter.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("macro_auc", "accuracy", "dice", "detection_map")


def path(name: str) -> str:
    """The folder of the metric ``name`` to pass to ``evaluate.load`` (a local path: loading it
    never reaches the Hugging Face hub)."""
    if name not in NAMES:
        raise ValueError(f"no evaluate module {name!r} in medvlp-bench; the modules are: {', '.join(NAMES)}")
    folder = HERE / name
    if not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(
            f"{folder / (name + '.py')} is missing: the package was installed without its package data; "
            "reinstall medvlp-bench (pip install -e .)"
        )
    return str(folder)


__all__ = ["NAMES", "path"]
