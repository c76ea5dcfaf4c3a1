"""Batched linear probes: the heads of several units of one task trained as one computation.

The heads of one group share the training-set size, the recipe and the validation set (in
the harness: the seeds of one task and label fraction). Each head keeps everything the
single-head trainer (:func:`benchmark.linear_probe.train_linear_probe`) gives it: the
initialisation of ``torch.manual_seed(seed)``, its own generator for the per-epoch view
choice and data order (the same draws in the same order), AdamW with the recipe's settings,
its own early stopping (patience, relative ``min_delta``), best-epoch restore and training
log. A stopped head leaves the batch; the others continue.

Each step gathers the heads' batches from one stacked (heads, N, D) tensor of the epoch's
inputs, computes the gradients of BCE / cross-entropy in closed form (the kernels autograd
runs for the single-head trainer, without autograd) and applies the optimizer's own
functional AdamW to the stacked weights (fused on CUDA, as the single-head trainer);
validation losses are computed per head as the single-head trainer computes them. The
matrix products come in two forms:

- per head (the default on CPU): each head's ``linear`` and weight gradient are computed on
  their own, with operands at 64-byte aligned addresses, so every head's numbers are
  BIT-IDENTICAL to the single-head trainer's (``--probe-batching off``) and do not depend on
  which other heads share the batch (tests/test_batched_probe.py). The speed-up comes from
  the rest: no autograd graph, one optimizer step and one data gather per step for all heads.
- stacked (the default on CUDA, where launches, not arithmetic, cost the time): one
  ``baddbmm`` forward and one ``bmm`` weight gradient for all heads. Their summation order
  differs from ``linear`` / ``mm``, so the weights differ from the single-head trainer's in
  the last bits each step; on well-conditioned probes the results agree within the tolerance
  README "Batched probes" states (tested on CPU), while a chaotic probe (the demo suite's,
  at its large learning rate) can end in another epoch and another value, as it does on
  another machine. On CPU this form is still independent of the other heads (elementwise
  kernels chosen to round every element alike: the sigmoid as ``1 / (1 + exp(-x))``; a lone
  head is multiplied beside a copy of itself, because MKL rounds a batch of one like a plain
  product); on CUDA cuBLAS may pick another kernel for another number of heads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.adamw import adamw
from tqdm.auto import tqdm

from .linear_probe import ProbeResult, probe_loss
from .task_spec import LinearProbeRecipe
from .early_stopping import Patience


@dataclass
class HeadData:
    """One head's training data: ``views`` (views, N, D) features (heads with the same
    training images may share one tensor: it moves to the device once) and its targets."""

    views: torch.Tensor
    targets: torch.Tensor
    seed: int


def _init_heads(seeds: list[int], dim: int, outputs: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, O, D) weights and (H, O) biases, each head as ``train_linear_probe`` initialises it."""
    weights, biases = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        head = nn.Linear(dim, outputs)
        weights.append(head.weight.detach())
        biases.append(head.bias.detach())
    return torch.stack(weights).to(device), torch.stack(biases).to(device)


def _pairs(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A lone head on CPU is computed beside a copy of itself (see the module's numerics)."""
    return tuple(torch.cat([t, t]) for t in tensors)


@torch.no_grad()
def _val_loss(
    weight: torch.Tensor,
    bias: torch.Tensor,
    features: torch.Tensor,
    targets: torch.Tensor,
    loss: str,
    chunk: int = 65536,
) -> float:
    """:func:`benchmark.linear_probe.evaluate_loss` of one head, on its weight and bias."""
    total = 0.0
    for start in range(0, len(features), chunk):
        logits = F.linear(features[start : start + chunk], weight, bias)
        total += float(probe_loss(logits, targets[start : start + chunk], loss)) * len(logits)
    return total / max(1, len(features))


class _Heads:
    """The active heads' weights, AdamW state and epoch data, stacked along dim 0."""

    def __init__(self, weight, bias, device: torch.device, fused: bool):
        self.weight, self.bias = weight, bias
        self.moments = (
            [torch.zeros_like(weight), torch.zeros_like(bias)],
            [torch.zeros_like(weight), torch.zeros_like(bias)],
        )
        step = (lambda: torch.zeros((), dtype=torch.float32, device=device)) if fused else (lambda: torch.tensor(0.0))
        self.steps = [step(), step()]
        self.fused = fused
        self.features: torch.Tensor | None = None  # (H, N, D) this epoch's inputs, in training order
        self.targets: torch.Tensor | None = None  # (H, N, O) float (BCE: the targets; CE: one-hot, stacked form only)
        self.labels: torch.Tensor | None = None  # (H, N) class indices (CE only)

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, device=self.weight.device)
        pick = lambda t: None if t is None else t.index_select(0, index).contiguous()  # noqa: E731
        self.weight, self.bias = pick(self.weight), pick(self.bias)
        self.moments = tuple([pick(t) for t in group] for group in self.moments)
        self.features, self.targets, self.labels = pick(self.features), pick(self.targets), pick(self.labels)

    def new_epoch(self, views: list, targets: list, generators: list, loss: str, outputs: int, one_hot: bool) -> None:
        """This epoch's inputs of each active head: the single-head trainer's draws (one view
        per image, then the order) from the head's own generator; row k of a head is the
        single-head trainer's k-th input."""
        self.features = None  # frees the last epoch's first
        n, dim = views[0].shape[1], views[0].shape[2]
        self.features = torch.empty(len(views), n, dim, device=self.weight.device)
        ordered = []
        for row, (head_views, head_targets, generator) in enumerate(zip(views, targets, generators)):
            choice = torch.randint(head_views.shape[0], (n,), generator=generator).to(self.weight.device)
            order = torch.randperm(n, generator=generator).to(self.weight.device)
            self.features[row] = head_views[choice[order], order]
            ordered.append(head_targets[order])
        labels = torch.stack(ordered)
        if loss == "bce":
            self.targets, self.labels = labels.float(), None
        else:
            self.labels = labels.long()
            self.targets = F.one_hot(self.labels, outputs).float() if one_hot else None

    def step(self, recipe: LinearProbeRecipe, grads: list[torch.Tensor]) -> None:
        adamw(
            [self.weight, self.bias],
            grads,
            self.moments[0],
            self.moments[1],
            [],
            self.steps,
            foreach=False,
            fused=self.fused,
            amsgrad=False,
            beta1=recipe.betas[0],
            beta2=recipe.betas[1],
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            eps=1e-8,
            maximize=False,
        )


def _aligned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` at a 64-byte aligned address, as every freshly allocated tensor is (MKL
    rounds a CPU matrix product differently for operands at other addresses)."""
    return tensor if tensor.data_ptr() % 64 == 0 else tensor.clone()


def _head_gradient(logits: torch.Tensor, targets: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(d loss / d logits, loss) of one head's batch, computed as autograd computes them for
    :func:`benchmark.linear_probe.probe_loss` (the same kernels; bit-identical on CPU)."""
    if loss == "bce":
        return (torch.sigmoid(logits) - targets).div_(targets.numel()), F.binary_cross_entropy_with_logits(
            logits, targets
        )
    log_probabilities = torch.log_softmax(logits, 1)
    value, total_weight = torch.ops.aten.nll_loss_forward(log_probabilities, targets, None, 1, -100)  # 1: mean
    grad = torch.ops.aten.nll_loss_backward(
        torch.ones((), device=logits.device), log_probabilities, targets, None, 1, -100, total_weight
    )
    return torch.ops.aten._log_softmax_backward_data(grad, log_probabilities, 1, log_probabilities.dtype), value


def _step_per_head(heads: _Heads, start: int, recipe: LinearProbeRecipe, running: list[torch.Tensor]) -> None:
    """One optimizer step of every active head on rows [start, start + batch) of its epoch
    order, with each head's matrix products computed as the single-head trainer computes
    them (CPU default: bit-identical to it); AdamW on the stacked weights. Adds each head's
    summed batch loss to ``running``."""
    stop = start + recipe.batch_size
    grad_weight, grad_bias = torch.empty_like(heads.weight), torch.empty_like(heads.bias)
    targets = heads.targets if recipe.loss == "bce" else heads.labels
    for row in range(len(heads.weight)):
        x = _aligned(heads.features[row, start:stop])
        grad, value = _head_gradient(
            F.linear(x, _aligned(heads.weight[row]), heads.bias[row]), targets[row, start:stop], recipe.loss
        )
        grad_weight[row] = grad.t().mm(x)
        grad_bias[row] = grad.sum(0)
        running[row] += value * len(x)
    heads.step(recipe, [grad_weight, grad_bias])


def _step_stacked(heads: _Heads, start: int, recipe: LinearProbeRecipe, pair: bool) -> torch.Tensor:
    """The same step as :func:`_step_per_head` with one ``baddbmm`` and one ``bmm`` for all
    heads (CUDA default); returns each head's summed batch loss."""
    stop = start + recipe.batch_size
    x, y = heads.features[:, start:stop], heads.targets[:, start:stop]
    rows, outputs = x.shape[1], y.shape[2]
    x_, weight, bias = _pairs(x, heads.weight, heads.bias) if pair else (x, heads.weight, heads.bias)
    logits = torch.baddbmm(bias.unsqueeze(1), x_, weight.transpose(1, 2))[: len(x)]
    if recipe.loss == "bce":
        # d mean BCE / d logits = (sigmoid - y) / numel (CUDA's sigmoid rounds every element
        # alike; the CPU's does not, see the module's numerics)
        sigmoid = torch.sigmoid(logits) if logits.is_cuda else torch.exp(-logits).add_(1).reciprocal_()
        grad = sigmoid.sub_(y).div_(rows * outputs)
        losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean((1, 2))
    else:  # d mean CE / d logits = (softmax - one-hot) / rows
        grad = torch.softmax(logits, 2).sub_(y).div_(rows)
        labels = heads.labels[:, start:stop]
        losses = (
            F.cross_entropy(logits.reshape(-1, outputs), labels.reshape(-1), reduction="none")
            .view(len(x), rows)
            .mean(1)
        )
    grad_, x_ = _pairs(grad, x) if pair else (grad, x)
    grad_weight = torch.bmm(grad_.transpose(1, 2), x_)[: len(x)]
    heads.step(recipe, [grad_weight, grad.sum(1)])
    return losses * rows


def _train_epoch(heads: _Heads, n: int, recipe: LinearProbeRecipe, per_head: bool) -> list[float]:
    """One epoch of every active head; returns each head's summed training loss."""
    device = heads.weight.device
    if per_head:
        running = [torch.zeros((), device=device) for _ in range(len(heads.weight))]
        for start in range(0, n, recipe.batch_size):
            _step_per_head(heads, start, recipe, running)
        return [float(r) for r in running]
    pair = device.type == "cpu" and len(heads.weight) == 1
    stacked = torch.zeros(len(heads.weight), device=device)
    for start in range(0, n, recipe.batch_size):
        stacked += _step_stacked(heads, start, recipe, pair)
    return stacked.tolist()


def train_linear_probes(
    data: list[HeadData],
    val_features: torch.Tensor,
    val_targets: torch.Tensor,
    num_outputs: int,
    recipe: LinearProbeRecipe,
    *,
    device: torch.device,
    progress: bool = True,
    desc: str = "probes",
    min_delta: float = 0.0,
    per_head_products: bool | None = None,
) -> list[ProbeResult]:
    """Fit one head per entry of ``data`` (same training-set size; own seed), all at once.
    Returns what :func:`benchmark.linear_probe.train_linear_probe` returns for each head;
    ``seconds`` is the group's wall time. ``per_head_products``: each head's matrix products
    on their own, as the single-head trainer computes them (default on CPU), or one batched
    product for all heads (default on CUDA)."""
    start = time.perf_counter()
    per_head = device.type == "cpu" if per_head_products is None else per_head_products
    if not data:
        return []
    n = len(data[0].targets)
    if any(len(d.targets) != n or d.views.shape[1] != n for d in data):
        raise ValueError("batched probes need one training-set size per group (group the units by it)")
    dim, count = data[0].views.shape[-1], len(data)
    weight, bias = _init_heads([d.seed for d in data], dim, num_outputs, device)
    best = [ProbeResult(None, 0, 0, math.inf) for _ in data]
    best_params = [(weight[h].clone(), bias[h].clone()) for h in range(count)]
    moved: dict[int, torch.Tensor] = {}  # one device copy per distinct views tensor
    views = [moved.setdefault(id(d.views), d.views.to(device)) for d in data]
    targets = [d.targets.to(device) for d in data]
    generators = [torch.Generator(device="cpu").manual_seed(d.seed) for d in data]
    val_features, val_targets = val_features.to(device).float(), val_targets.to(device)
    heads = _Heads(weight, bias, device, fused=device.type == "cuda")
    active = list(range(count))  # original index of each row of ``heads``
    stopping = [Patience(recipe.patience, min_delta) for _ in data]
    bar = tqdm(range(recipe.max_epochs), desc=desc, unit="epoch", disable=not progress, leave=False, dynamic_ncols=True)
    for epoch in bar:
        heads.new_epoch(
            [views[h] for h in active],
            [targets[h] for h in active],
            [generators[h] for h in active],
            recipe.loss,
            num_outputs,
            one_hot=not per_head,
        )
        train_losses = _train_epoch(heads, n, recipe, per_head)
        finished = []
        for row, h in enumerate(active):
            val_loss = _val_loss(_aligned(heads.weight[row]), heads.bias[row], val_features, val_targets, recipe.loss)
            result = best[h]
            result.history.append(
                {"epoch": epoch + 1, "train_loss": train_losses[row] / max(1, n), "val_loss": val_loss}
            )
            if val_loss < result.best_val_loss:
                best_params[h] = (heads.weight[row].clone(), heads.bias[row].clone())
                result.best_epoch, result.best_val_loss = epoch + 1, val_loss
            result.epochs_run = epoch + 1
            if stopping[h].update(val_loss):  # benchmark/early_stopping.py
                finished.append(row)
        bar.set_postfix(heads=f"{len(active) - len(finished)}/{count}")
        if finished:
            rows = [row for row in range(len(active)) if row not in finished]
            active = [active[row] for row in rows]
            if not active:
                break
            heads.keep(rows)
    bar.close()
    seconds = time.perf_counter() - start
    for h, result in enumerate(best):
        head = nn.utils.skip_init(nn.Linear, dim, num_outputs, device=device)
        with torch.no_grad():
            head.weight.copy_(best_params[h][0])
            head.bias.copy_(best_params[h][1])
        result.head, result.seconds = head, seconds
    return best
