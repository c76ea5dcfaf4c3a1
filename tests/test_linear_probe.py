"""The linear probe's early stopping: the recipe's rule (any improvement resets patience) and
a smoke suite's relative ``min_delta`` (only improvements larger than that share do)."""

from __future__ import annotations

import torch

from benchmark.linear_probe import train_linear_probe
from benchmark.task_spec import LinearProbeRecipe


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 8, generator=g)
    y = (x[:, 0] + 0.5 * torch.randn(200, generator=g) > 0).float().unsqueeze(1)
    return x[:150], y[:150], x[150:], y[150:]


def test_min_delta_zero_is_the_recipe_rule_and_a_large_one_stops_after_patience():
    torch.manual_seed(0)
    xt, yt, xv, yv = _data()
    recipe = LinearProbeRecipe(loss="bce", max_epochs=40, patience=3, lr=1e-2, batch_size=50)
    plain = train_linear_probe(
        xt.unsqueeze(0), yt, xv, yv, 1, recipe, seed=0, device=torch.device("cpu"), progress=False
    )
    same = train_linear_probe(
        xt.unsqueeze(0), yt, xv, yv, 1, recipe, seed=0, device=torch.device("cpu"), progress=False, min_delta=0.0
    )
    assert plain.epochs_run == same.epochs_run and plain.best_epoch == same.best_epoch
    losses = [h["val_loss"] for h in plain.history]
    assert plain.best_val_loss == min(losses) and plain.best_epoch == losses.index(min(losses)) + 1
    # no epoch improves the loss by half of itself: the first epoch sets the reference, then
    # `patience` epochs without such an improvement stop the run; the best head is still the lowest loss
    strict = train_linear_probe(
        xt.unsqueeze(0), yt, xv, yv, 1, recipe, seed=0, device=torch.device("cpu"), progress=False, min_delta=0.5
    )
    assert strict.epochs_run == 1 + recipe.patience
    first = [h["val_loss"] for h in strict.history]
    assert strict.best_val_loss == min(first) and strict.best_epoch == first.index(min(first)) + 1
