"""Pretraining methods. Each is an ``nn.Module`` whose attribute names reproduce the official
checkpoint key layout (so the image backbone sits under the prefix the harness detects):

    convirt  img_encoder.model.*          (MGCA's ConVIRT re-implementation)
    gloria   gloria.img_encoder.model.*
    mgca     img_encoder_q.model.*

``forward(batch, ctx)`` splits the per-rank batch into ``ctx.chunks`` chunks (a single
process emulating several ranks: each chunk has its own batch-norm statistics and
in-batch negatives, exactly as one DDP rank would), encodes them, and returns the losses
averaged over the chunks. ``DEFAULTS[method]`` are the hyperparameters of each method's
reference code; the named presets (:mod:`recipes.pretraining.presets`) build on them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

# Official defaults. MGCA / ConVIRT: MGCA's repo (mgca_module.py / convirt_module.py CLI
# defaults: AdamW lr 2e-5, betas (0.9, 0.999), weight decay 0.05, batch 72 per GPU, 50 epochs,
# cosine schedule with linear warm-up over 40% of the steps down to 1e-8, early stopping
# patience 5, BERT = first 6 layers of Bio_ClinicalBERT, 112 tokens). GLoRIA: its repo's
# pretrain config + builder (Adam lr 5e-5, betas (0.5, 0.999), weight decay 1e-6, batch 48,
# gradient clipping 0.25, ReduceLROnPlateau factor 0.5 patience 5, patience 10, last 4 BERT
# layers summed, 768-d embeddings = BERT width).
DEFAULTS: dict[str, dict[str, Any]] = {
    "convirt": dict(
        lr=2e-5,
        weight_decay=0.05,
        betas=(0.9, 0.999),
        optimizer="adamw",
        batch_size=72,
        epochs=50,
        scheduler="cosine_warmup",
        warmup=0.4,
        min_lr=1e-8,
        grad_clip=0.0,
        patience=5,
        text_layers=6,
        emb_dim=128,
        proj_hidden=2048,
        temperature=0.07,
    ),
    "gloria": dict(
        lr=5e-5,
        weight_decay=1e-6,
        betas=(0.5, 0.999),
        optimizer="adam",
        batch_size=48,
        epochs=50,
        scheduler="plateau",
        plateau_factor=0.5,
        plateau_patience=5,
        grad_clip=0.25,
        patience=10,
        text_layers=0,
        last_n_layers=4,
        temp1=4.0,
        temp2=5.0,
        temp3=10.0,
        local_weight=1.0,
        global_weight=1.0,
    ),
    "mgca": dict(
        lr=2e-5,
        weight_decay=0.05,
        betas=(0.9, 0.999),
        optimizer="adamw",
        batch_size=72,
        epochs=50,
        scheduler="cosine_warmup",
        warmup=0.4,
        min_lr=1e-8,
        grad_clip=0.0,
        patience=5,
        text_layers=6,
        emb_dim=128,
        proj_hidden=2048,
        temperature=0.07,
        local_temperature=0.1,
        proto_temperature=0.2,
        num_prototypes=500,
        freeze_prototypes_epochs=1,
        sinkhorn_iterations=3,
        epsilon=0.05,
        lambda_1=1.0,
        lambda_2=1.0,
        lambda_3=1.0,
    ),
}
IMAGE_PREFIX = {"convirt": "img_encoder.model.", "gloria": "gloria.img_encoder.model.", "mgca": "img_encoder_q.model."}


@dataclass
class StepContext:
    chunks: int = 1  # virtual ranks inside this process
    rank: int = 0
    world_size: int = 1
    seed: int = 0
    step: int = 0  # micro-step counter (for dropout seeds)
    epoch: int = 0
    all_reduce: Callable[[Tensor], Tensor] | None = None  # sum across ranks (None: single process)
    autocast: Callable[[], Any] = field(default=lambda: torch.autocast("cpu", enabled=False))


def chunk_seed(seed: int, step: int, chunk: int) -> int:
    h = hashlib.sha256(f"dropout:{seed}:{step}:{chunk}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


def split_batch(batch: dict[str, Any], chunks: int) -> list[dict[str, Any]]:
    n = batch["image"].shape[0]
    if n % chunks:
        raise ValueError(f"batch of {n} does not split into {chunks} chunks")
    size = n // chunks
    return [{k: v[i * size : (i + 1) * size] for k, v in batch.items()} for i in range(chunks)]


class Method(nn.Module):
    name = ""

    def encode(self, chunk: dict[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def chunk_losses(self, enc: dict[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        raise NotImplementedError

    def combine(self, encs: list[dict[str, Tensor]], ctx: StepContext) -> list[dict[str, Tensor]]:
        return [self.chunk_losses(e, ctx) for e in encs]

    def forward(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        encs = []
        for i, chunk in enumerate(split_batch(batch, ctx.chunks)):
            torch.manual_seed(chunk_seed(ctx.seed, ctx.step, ctx.rank * ctx.chunks + i))
            with ctx.autocast():
                enc = self.encode(chunk)
            encs.append(
                {k: (v.float() if isinstance(v, Tensor) and v.is_floating_point() else v) for k, v in enc.items()}
            )
        per_chunk = self.combine(encs, ctx)
        return {k: torch.stack([p[k] for p in per_chunk]).mean() for k in per_chunk[0]}

    def after_backward(self, epoch: int) -> None:
        pass

    def record(self) -> dict[str, Any]:
        """Projection dims etc. for the checkpoint's ``medvlp`` record."""
        return {}


def build_method(name: str, **kwargs) -> Method:
    from recipes.pretraining.methods.convirt import ConVIRT
    from recipes.pretraining.methods.gloria import GLoRIA
    from recipes.pretraining.methods.mgca import MGCA

    return {"convirt": ConVIRT, "gloria": GLoRIA, "mgca": MGCA}[name](**kwargs)
