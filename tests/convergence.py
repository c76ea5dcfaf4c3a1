"""Test helper: where a unit's best epoch sits relative to its epoch cap."""

from __future__ import annotations


def best_and_cap(result) -> tuple[int, int]:
    """(best epoch, epoch cap) of a supervised result, both counted from 1 (every family counts
    from 1 since result schema 3; schema-2 segmentation and detection files counted from 0)."""
    training, hyper = result.training, result.hyperparameters
    if result.family == "classification":
        return int(training["best_epoch"]), int(hyper["probe"]["max_epochs"])
    best = int(training["best_epoch"]) + (1 if result.schema_version < 3 else 0)
    if result.family == "segmentation":
        return best, int(hyper["max_epochs"])
    return best, int(hyper["recipe"]["max_epochs"])


def converged(result) -> bool:
    """Early stopping fired, or the best epoch came before the last allowed one."""
    best, cap = best_and_cap(result)
    return best < cap
