"""Top-1 accuracy exactly as medvlp-bench computes it for multi-class units (COVIDx).

An ``evaluate.Metric`` whose ``_compute`` calls the harness's own ``benchmark.metrics.accuracy``
(scikit-learn's ``accuracy_score`` of the arg-max class). Load it by path, offline::

    import evaluate
    from benchmark.evaluate_modules import path

    accuracy = evaluate.load(path("accuracy"))
"""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@inproceedings{wang2022mgca,
  title     = {Multi-Granularity Cross-modal Alignment for Generalized Medical Visual Representation Learning},
  author    = {Wang, Fuying and Zhou, Yuhao and Wang, Shujun and Vardhanabhuti, Varut and Yu, Lequan},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2022}
}
"""

_DESCRIPTION = """\
Accuracy of medvlp-bench's multi-class tasks: the share of images whose highest-scoring class is the
labelled one (on a tie, the first of the tied classes, as numpy's argmax).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: per image a list with one score (e.g. probability) per class, or the predicted
        class index.
    references: per image the class index.
Returns:
    accuracy: a fraction in [0, 1].
Example:
    >>> accuracy = evaluate.load(path("accuracy"))
    >>> accuracy.compute(predictions=[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], references=[0, 1])
    {'accuracy': 0.5}
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


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(  # class scores, the class index
                    {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
                ),
                datasets.Features(  # predicted class index, the class index
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
            ],
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references):
        metrics = _harness("benchmark.metrics")
        labels = np.asarray(references, dtype=np.int64)
        scores = np.asarray(predictions)
        if scores.ndim == 1:  # class indices: one-hot scores, whose arg-max is the index
            indices = scores.astype(np.int64)
            if len(indices) and indices.min() < 0:
                raise ValueError("predicted class indices must be >= 0")
            width = int(max(indices.max(initial=0), labels.max(initial=0))) + 1
            scores = np.eye(width)[indices]
        return {"accuracy": metrics.accuracy(labels, scores.astype(np.float64))}
