"""Classification metrics (scikit-learn does the arithmetic).

- ``macro_auc``: ROC AUC per class, then the mean over classes (CheXpert's 5 labels, RSNA's
  one; COVIDx one-vs-rest). A class whose test labels are all one value has no AUC: it is
  left out of the mean and reported in ``undefined``.
- ``accuracy``: top-1 accuracy of the arg-max class.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score


def per_class_auc(targets: np.ndarray, scores: np.ndarray) -> list[float]:
    """AUC of each column; ``targets`` (N, C) in {0, 1}, ``scores`` (N, C). NaN where undefined."""
    targets = np.asarray(targets).reshape(len(targets), -1)
    scores = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    aucs = []
    for c in range(targets.shape[1]):
        if len(np.unique(targets[:, c])) < 2:
            aucs.append(float("nan"))
        else:
            aucs.append(float(roc_auc_score(targets[:, c], scores[:, c])))
    return aucs


def macro_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    aucs = [a for a in per_class_auc(targets, scores) if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.int64)[np.asarray(labels, dtype=np.int64)]


def accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(accuracy_score(np.asarray(labels), np.asarray(scores).argmax(axis=1)))


def classification_metrics(targets: np.ndarray, probabilities: np.ndarray, multilabel: bool, class_names) -> dict:
    """All metrics of a classification task from per-image targets and probabilities.

    Multi-label / binary: ``targets`` (N, C) 0/1, ``probabilities`` (N, C) sigmoid outputs.
    Multi-class: ``targets`` (N,) class indices, ``probabilities`` (N, C) softmax outputs.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if multilabel or targets.ndim == 2:
        onehot = np.asarray(targets).reshape(len(targets), -1)
        out = {}
    else:
        onehot = one_hot(targets, probabilities.shape[1])
        out = {"accuracy": accuracy(targets, probabilities)}
    aucs = per_class_auc(onehot, probabilities)
    defined = [a for a in aucs if not np.isnan(a)]
    out["auc"] = float(np.mean(defined)) if defined else float("nan")
    out["auc_per_class"] = {name: a for name, a in zip(class_names, aucs)}
    undefined = [name for name, a in zip(class_names, aucs) if np.isnan(a)]
    if undefined:
        out["auc_undefined_classes"] = undefined
    return out


def fast_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) identity, ties averaged; NaN if one class."""
    from scipy.stats import rankdata

    positives = targets > 0
    n_pos = int(positives.sum())
    n_neg = len(targets) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
