"""The loss-monitored loops' stopping rule (benchmark/early_stopping.py), by hand."""

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
