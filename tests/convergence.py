"""Test helper: where a unit's best epoch sits relative to its epoch cap."""

from __future__ import annotations


def best_and_cap(result) -> tuple[int, int]:
    """(best epoch, epoch cap) of a supervised result; every family counts epochs from 1."""
    training, hyper = result.training, result.hyperparameters
    if result.family == "classification":
        return int(training["best_epoch"]), int(hyper["probe"]["max_epochs"])
    if result.family == "segmentation":
        return int(training["best_epoch"]), int(hyper["max_epochs"])
    return int(training["best_epoch"]), int(hyper["recipe"]["max_epochs"])


def converged(result) -> bool:
    """Early stopping fired, or the best epoch came before the last allowed one."""
    best, cap = best_and_cap(result)
    return best < cap
