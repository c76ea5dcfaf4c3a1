"""The training loops' stopping rule (benchmark/early_stopping.py), by hand."""

from benchmark.early_stopping import Patience


def test_any_improvement_resets_the_patience_without_a_min_delta():
    stopping = Patience(2)
    # 1.0 (reference), 0.9 better, 0.95 worse (1), 0.89 better, 0.9 (1), 0.9 (2) -> stop
    assert [stopping.update(v) for v in (1.0, 0.9, 0.95, 0.89, 0.9, 0.9)] == [False] * 5 + [True]


def test_a_relative_min_delta_counts_small_improvements_as_stale():
    stopping = Patience(2, min_delta=0.1)
    # reference 1.0; 0.95 is not below 0.9 (stale 1); 0.85 is (reset, reference 0.85);
    # 0.8 is not below 0.765 (1); 0.77 not either (2) -> stop, although each epoch improved
    assert [stopping.update(v) for v in (1.0, 0.95, 0.85, 0.8, 0.77)] == [False, False, False, False, True]
    assert stopping.reference == 0.85


def test_a_monitored_score_leads_and_the_loss_breaks_its_ties():
    stopping = Patience(2, min_delta=0.1)
    epochs = [  # (val loss, val mAP) -> progress?
        (2.0, 0.0),  # first epoch: progress (reference loss 2.0, best mAP 0)
        (1.9, 0.0),  # mAP ties, loss not below 1.8: stale 1
        (1.5, 0.0),  # mAP ties, loss below 1.8: progress (reference 1.5)
        (3.0, 0.2),  # higher mAP, although the loss rose: progress (reference 3.0)
        (1.0, 0.1),  # lower mAP, whatever the loss: stale 1
        (2.9, 0.2),  # mAP ties the best, loss not below 2.7: stale 2 -> stop
    ]
    assert [stopping.update(loss, score) for loss, score in epochs] == [False] * 5 + [True]
    assert (stopping.reference, stopping.best_score) == (3.0, 0.2)
