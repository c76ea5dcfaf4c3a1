import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from benchmark.metrics import accuracy, classification_metrics, macro_auc, per_class_auc


def test_macro_auc_matches_sklearn_per_class_mean():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, size=(200, 5))
    scores = rng.random((200, 5)) + 0.3 * targets
    expected = np.mean([roc_auc_score(targets[:, c], scores[:, c]) for c in range(5)])
    assert macro_auc(targets, scores) == pytest.approx(expected, abs=1e-12)
    # sklearn's own macro average agrees too
    assert macro_auc(targets, scores) == pytest.approx(roc_auc_score(targets, scores, average="macro"), abs=1e-12)


def test_auc_oracles():
    targets = np.array([[0], [0], [1], [1], [0], [1]])
    assert macro_auc(targets, np.full((6, 1), 0.3)) == 0.5  # constant predictor
    assert macro_auc(targets, targets.astype(float)) == 1.0  # perfect predictor
    assert macro_auc(targets, 1.0 - targets) == 0.0  # perfectly wrong
    # hand-checked: positives scored 0.8, 0.4; negatives 0.6, 0.2 -> 3 of 4 pairs ordered
    assert macro_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.6, 0.2])) == 0.75


def test_auc_skips_classes_with_one_label_value():
    targets = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    scores = np.array([[0.1, 0.5], [0.9, 0.5], [0.2, 0.5], [0.8, 0.5]])
    aucs = per_class_auc(targets, scores)
    assert aucs[0] == 1.0 and np.isnan(aucs[1])
    assert macro_auc(targets, scores) == 1.0


def test_accuracy_matches_sklearn_and_hand_count():
    labels = np.array([0, 1, 2, 2, 1, 0])
    scores = np.array(
        [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.3, 0.4, 0.3], [0.2, 0.7, 0.1]]
    )
    assert accuracy(labels, scores) == pytest.approx(4 / 6)
    assert accuracy(labels, scores) == accuracy_score(labels, scores.argmax(1))


def test_classification_metrics_multiclass_reports_accuracy_and_ovr_auc():
    labels = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[labels] * 0.7 + 0.1
    out = classification_metrics(labels, probs, multilabel=False, class_names=["normal", "pneumonia", "COVID-19"])
    assert out["accuracy"] == 1.0 and out["auc"] == 1.0
    assert set(out["auc_per_class"]) == {"normal", "pneumonia", "COVID-19"}
    assert roc_auc_score(labels, probs, multi_class="ovr", average="macro") == pytest.approx(out["auc"])
