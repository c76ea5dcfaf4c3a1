"""Segmentation Dice under both of medvlp-bench's rules, with specificity, exactly as a unit computes it.

An ``evaluate.Metric`` whose ``_compute`` calls the harness's own ``benchmark.seg_metrics``:
``mask_counts`` (per-image pixel counts at probability threshold 0.5) and ``segmentation_metrics``.
Load it by path, offline::

    import evaluate
    from benchmark.evaluate_modules import path

    dice = evaluate.load(path("dice"))
"""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{liu2023utilizing,
  title   = {Utilizing Synthetic Data for Medical Vision-Language Pre-training: Bypassing the Need for Real Images},
  author  = {Liu, Che and Shah, Anand and Bai, Wenjia and Arcucci, Rossella},
  journal = {arXiv preprint arXiv:2310.07027},
  year    = {2023}
}
"""

_DESCRIPTION = """\
Dice of binary masks (a pixel is predicted when its probability exceeds the threshold, 0.5):
- dice: the REFERENCE rule (MGCA's, the published tables'): per-image Dice averaged over all test
  images, where an image with an empty ground truth scores 1 when the prediction is empty, else 0
  (so predicting nothing scores the share of negative images);
- dice_positive: the SOUND rule: mean per-image Dice over the images with a non-empty ground truth;
- specificity: share of the negative images whose prediction is empty (read beside dice_positive);
- dice_positive_dataset: 2 * sum(intersection) / (sum(|pred|) + sum(|gt|)) over the positive images;
- floors: every rule's value for the heads that predict nothing and everything on the same images.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: per image an (H, W) array (nested lists) of foreground probabilities, or a 0/1 mask.
    references: per image the (H, W) 0/1 ground-truth mask (same size as its prediction; sizes may
        differ between images).
    threshold: probability above which a pixel is predicted (default 0.5, the protocol's).
Returns:
    dice, dice_positive, specificity, dice_positive_dataset (NaN where no image qualifies),
    n_images, n_positive, n_negative, floors ({predict_nothing, predict_everything: {dice,
    dice_positive, specificity}}).
Example:
    >>> dice = evaluate.load(path("dice"))
    >>> dice.compute(predictions=[[[0.9, 0.1], [0.2, 0.3]], [[0.0, 0.0], [0.0, 0.0]]],
    ...              references=[[[1, 1], [0, 0]], [[0, 0], [0, 0]]])["dice_positive"]
    0.6666666666666666
"""


def _harness(name):
    """A module of medvlp-bench, with an actionable error when the package is not importable."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f"this evaluate module computes with medvlp-bench's own metric code ({name}), which cannot be imported "
            f"here ({error}); install medvlp-bench in this environment (pip install -e /path/to/medvlp-bench)"
        ) from error


class Dice(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.List(datasets.List(datasets.Value("float64"))),
                    "references": datasets.List(datasets.List(datasets.Value("int64"))),
                }
            ),
        )

    def _compute(self, predictions, references, threshold=0.5):
        seg = _harness("benchmark.seg_metrics")
        counts = {"intersection": [], "pred_pixels": [], "true_pixels": [], "pixels": []}
        for k, (prediction, reference) in enumerate(zip(predictions, references)):
            probabilities = np.asarray(prediction, dtype=np.float64)
            mask = np.asarray(reference, dtype=np.int64)
            if probabilities.ndim != 2 or probabilities.shape != mask.shape:
                raise ValueError(
                    f"image {k}: prediction {probabilities.shape} and reference {mask.shape} must be (H, W) arrays "
                    "of the same size"
                )
            for name, values in seg.mask_counts(probabilities[None], mask[None], threshold).items():
                counts[name].append(int(values[0]))
            counts["pixels"].append(int(mask.size))
        return seg.segmentation_metrics(counts)
