"""The linear probe: one randomly initialised linear layer on frozen features.

docs/protocol.md: Flatten -> Linear(features, outputs); AdamW (lr 5e-4, betas 0.9/0.999, weight
decay 1e-6), batch 48, at most 50 epochs, early stopping on validation loss with patience
10, test with the best head. BCE-with-logits for multi-label and binary tasks, cross-entropy
for multi-class ones.

Training features come as ``views`` fixed augmented views per image (from the feature
cache): each epoch every image contributes ONE view, chosen by the seeded generator, so the
head sees augmentation without the encoder running again. In exact mode
(``--no-feature-cache``) a callback supplies freshly encoded views every epoch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .task_spec import LinearProbeRecipe
from .early_stopping import Patience


@dataclass
class ProbeResult:
    head: nn.Linear
    best_epoch: int
    epochs_run: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def probe_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.cross_entropy(logits, targets.long())


@torch.no_grad()
def evaluate_loss(
    head: nn.Linear, features: torch.Tensor, targets: torch.Tensor, loss: str, chunk: int = 65536
) -> float:
    head.eval()
    total = 0.0
    for start in range(0, len(features), chunk):
        logits = head(features[start : start + chunk])
        total += float(probe_loss(logits, targets[start : start + chunk], loss)) * len(logits)
    return total / max(1, len(features))


@torch.no_grad()
def predict(head: nn.Linear, features: torch.Tensor, loss: str, chunk: int = 65536) -> torch.Tensor:
    head.eval()
    outs = [head(features[s : s + chunk]) for s in range(0, len(features), chunk)]
    logits = torch.cat(outs) if outs else torch.zeros(0, head.out_features)
    return torch.sigmoid(logits) if loss == "bce" else torch.softmax(logits, dim=1)


def train_linear_probe(
    train_views: torch.Tensor | Callable[[int], torch.Tensor],
    train_targets: torch.Tensor,
    val_features: torch.Tensor,
    val_targets: torch.Tensor,
    num_outputs: int,
    recipe: LinearProbeRecipe,
    *,
    seed: int,
    device: torch.device,
    progress: bool = True,
    desc: str = "probe",
    min_delta: float = 0.0,
) -> ProbeResult:
    """Fit the head; ``train_views`` is (views, N, D) or a callable epoch -> (views, N, D)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    static = torch.is_tensor(train_views)
    first = train_views if static else train_views(0)
    dim = first.shape[-1]
    head = nn.Linear(dim, num_outputs).to(device)
    optimizer = torch.optim.AdamW(
        head.parameters(),
        lr=recipe.lr,
        betas=recipe.betas,
        weight_decay=recipe.weight_decay,
        fused=device.type == "cuda",  # one kernel per step instead of several
    )
    train_targets = train_targets.to(device)
    val_features, val_targets = val_features.to(device).float(), val_targets.to(device)
    n = len(train_targets)
    best = ProbeResult(copy.deepcopy(head), 0, 0, math.inf)
    stopping = Patience(recipe.patience, min_delta)
    bar = tqdm(range(recipe.max_epochs), desc=desc, unit="epoch", disable=not progress, leave=False, dynamic_ncols=True)
    for epoch in bar:
        views = first if epoch == 0 else (train_views if static else train_views(epoch))
        views = views.to(device)
        choice = torch.randint(views.shape[0], (n,), generator=generator).to(device)
        epoch_features = views[choice, torch.arange(n, device=device)].float()
        order = torch.randperm(n, generator=generator).to(device)
        head.train()
        running = torch.zeros((), device=device)  # summed on the device: no sync per step
        for s in range(0, n, recipe.batch_size):
            batch = order[s : s + recipe.batch_size]
            loss = probe_loss(head(epoch_features[batch]), train_targets[batch], recipe.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.detach() * len(batch)
        val_loss = evaluate_loss(head, val_features, val_targets, recipe.loss)
        best.history.append({"epoch": epoch + 1, "train_loss": float(running) / max(1, n), "val_loss": val_loss})
        bar.set_postfix(val_loss=f"{val_loss:.4f}")
        if val_loss < best.best_val_loss:  # the best head: the lowest validation loss
            best.head, best.best_epoch, best.best_val_loss = copy.deepcopy(head), epoch + 1, val_loss
        best.epochs_run = epoch + 1
        if stopping.update(val_loss):  # benchmark/early_stopping.py
            break
    bar.close()
    best.seconds = time.perf_counter() - start
    return best
