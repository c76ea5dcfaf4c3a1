"""Macro ROC AUC exactly as medvlp-bench computes it for classification and zero-shot units.

An ``evaluate.Metric`` whose ``_compute`` calls the harness's own
``benchmark.metrics.classification_metrics`` (scikit-learn's ``roc_auc_score`` per class, then the
mean over the classes whose test labels take both values). Load it by path, offline::

    import evaluate
    from benchmark.evaluate_modules import path

    auc = evaluate.load(path("macro_auc"))
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
Macro AUC of medvlp-bench (CheXpert's 5 labels, RSNA's one, COVIDx one-vs-rest): ROC AUC of each class,
then the mean over the classes whose labels are not all one value (those are reported, not averaged).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: per image either a list with one score per class (multi-label, or multi-class
        probabilities), or one score (binary).
    references: per image either a list with one 0/1 label per class (multi-label), one 0/1 label
        (binary, with one score), or the class index (multi-class, with a list of class scores:
        one-vs-rest AUC, plus accuracy of the arg-max class, as the harness reports for COVIDx).
    class_names: optional names of the classes (keys of ``auc_per_class``); default "0", "1", ...
Returns:
    auc: mean of the defined per-class AUCs (NaN when none is defined).
    auc_per_class: {class name: AUC, NaN when undefined}.
    auc_undefined_classes: the classes whose labels are all one value (only when there are some).
    accuracy: multi-class input only.
Example:
    >>> auc = evaluate.load(path("macro_auc"))
    >>> auc.compute(predictions=[[0.9, 0.5], [0.1, 0.7], [0.8, 0.3]], references=[[1, 0], [0, 1], [1, 1]])
    {'auc': 0.75, 'auc_per_class': {'0': 1.0, '1': 0.5}}
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


class MacroAuc(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(  # multi-label: a 0/1 label and a score per class
                    {
                        "predictions": datasets.List(datasets.Value("float64")),
                        "references": datasets.List(datasets.Value("int64")),
                    }
                ),
                datasets.Features(  # binary: one score, one 0/1 label
                    {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
                ),
                datasets.Features(  # multi-class: class scores, the class index
                    {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
                ),
            ],
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_auc_score.html"],
        )

    def _compute(self, predictions, references, class_names=None):
        metrics = _harness("benchmark.metrics")
        scores = np.asarray(predictions, dtype=np.float64)
        targets = np.asarray(references, dtype=np.int64)
        multiclass = targets.ndim == 1 and scores.ndim == 2
        if scores.ndim == 1:  # binary: one class column
            scores, targets = scores[:, None], targets[:, None]
        if not multiclass and scores.shape != targets.shape:
            raise ValueError(f"{scores.shape[1]} scores but {targets.shape[1]} labels per image")
        if multiclass and len(targets) and (targets.min() < 0 or targets.max() >= scores.shape[1]):
            raise ValueError(f"class indices must lie in [0, {scores.shape[1] - 1}] (one score per class)")
        names = [str(k) for k in range(scores.shape[1])] if class_names is None else list(class_names)
        if len(names) != scores.shape[1]:
            raise ValueError(f"{len(names)} class names for {scores.shape[1]} classes")
        return metrics.classification_metrics(targets, scores, not multiclass, names)
