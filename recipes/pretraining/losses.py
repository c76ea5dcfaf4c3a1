"""Losses of ConVIRT, GLoRIA and MGCA (re-implemented from the papers and official code).

All functions take float tensors and return scalars; callers cast to float32 first.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


# ------------------------------------------------------------------------------ global
def info_nce(img: Tensor, txt: Tensor, temperature: float = 0.07) -> tuple[Tensor, Tensor]:
    """Symmetric InfoNCE on L2-normalised embeddings: (image->text, text->image) cross
    entropies over the batch, each averaged over the batch. The brief's L is their mean;
    MGCA's ConVIRT and MGCA's instance alignment use their sum."""
    scores = img @ txt.t() / temperature
    labels = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.t(), labels)


def gloria_global_loss(img: Tensor, txt: Tensor, temp3: float = 10.0, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """GLoRIA's global loss: cosine similarities scaled by ``temp3`` (un-normalised inputs)."""
    num = img @ txt.t()
    den = img.norm(dim=1, keepdim=True) @ txt.norm(dim=1, keepdim=True).t()
    scores = num / den.clamp(min=eps) * temp3
    labels = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.t(), labels)


# ------------------------------------------------------------------------------ GLoRIA local
def gloria_word_region_similarity(
    words: Tensor, regions: Tensor, temp1: float = 4.0, temp2: float = 5.0, eps: float = 1e-8
) -> tuple[Tensor, Tensor]:
    """Similarity of one caption's words (n, D) with every image's regions (B, D, R).

    Attention: for each region a softmax over the words, then (x ``temp1``) a softmax over
    regions for each word; each word's region context is the attention-weighted regions.
    Returns (log sum_k exp(temp2 * cos(word_k, context_k)) per image (B,), attention (B, n, R))."""
    B, D, R = regions.shape
    raw = torch.einsum("dn,bdr->brn", words, regions)  # (B, R, n)
    over_words = raw.softmax(dim=-1)
    attn = (over_words.transpose(1, 2) * temp1).softmax(dim=-1)  # (B, n, R)
    context = torch.einsum("bnr,bdr->bnd", attn, regions)  # (B, n, D)
    w = words.t().unsqueeze(0)  # (1, n, D)
    cos = (w * context).sum(-1) / (w.norm(dim=-1) * context.norm(dim=-1)).clamp(min=eps)
    return torch.log(torch.exp(cos * temp2).sum(dim=1)), attn


LOCAL_LOSS_BLOCK = 16  # captions per batched product in gloria_local_loss (memory: block x B x words x (regions + D))


def gloria_local_loss(
    word_emb: Tensor,
    region_emb: Tensor,
    cap_lens: Sequence[int] | Tensor,
    temp1: float = 4.0,
    temp2: float = 5.0,
    temp3: float = 10.0,
    *,
    max_len: int | None = None,
    block: int = LOCAL_LOSS_BLOCK,
) -> tuple[Tensor, Tensor]:
    """GLoRIA's word-region loss. ``word_emb`` (B, D, T) merged words (position 0 is [CLS],
    as in GLoRIA, which takes the first ``cap_len`` = words + 1 positions); ``region_emb``
    (B, D, R). sim[j, i] = similarity of image j and caption i, x ``temp3``; cross entropy
    over captions (image->text) and over images (text->image).

    Every caption at once (``block`` captions per batched product, to bound memory): the words
    past a caption's length are masked out of the softmax over words and out of the sum over
    words, which gives :func:`gloria_word_region_similarity` of each caption's first
    ``cap_len`` words up to floating-point summation order. ``cap_lens`` may live on the device;
    ``max_len`` (>= every length, e.g. from the host copy of the lengths) avoids reading it."""
    B, _, T = word_emb.shape
    lens = torch.as_tensor(cap_lens, device=word_emb.device)
    if max_len is None:
        max_len = max(cap_lens) if isinstance(cap_lens, (list, tuple)) else int(lens.max())  # one host sync
    t = max(1, min(int(max_len), T))
    words = word_emb[:, :, :t]
    keep = torch.arange(t, device=word_emb.device).unsqueeze(0) < lens.unsqueeze(1)  # (B, t)
    cols = [
        _masked_word_region_similarity(words[i : i + block], keep[i : i + block], region_emb, temp1, temp2)
        for i in range(0, B, block)
    ]
    sims = torch.cat(cols, dim=0).t() * temp3  # (images, captions)
    labels = torch.arange(B, device=sims.device)
    return F.cross_entropy(sims, labels), F.cross_entropy(sims.t(), labels)


def _masked_word_region_similarity(
    words: Tensor, keep: Tensor, regions: Tensor, temp1: float, temp2: float, eps: float = 1e-8
) -> Tensor:
    """:func:`gloria_word_region_similarity`'s first output for c captions at once: words
    (c, D, t) with ``keep`` (c, t) marking each caption's words, regions (B, D, R) -> (c, B)."""
    raw = torch.einsum("cdn,bdr->cbrn", words, regions)  # (c, B, R, t)
    raw = raw.masked_fill(~keep[:, None, None, :], float("-inf"))
    over_words = raw.softmax(dim=-1)
    attn = (over_words.transpose(2, 3) * temp1).softmax(dim=-1)  # (c, B, t, R)
    context = torch.einsum("cbnr,bdr->cbnd", attn, regions)  # (c, B, t, D)
    w = words.transpose(1, 2).unsqueeze(1)  # (c, 1, t, D)
    cos = (w * context).sum(-1) / (w.norm(dim=-1) * context.norm(dim=-1)).clamp(min=eps)  # (c, B, t)
    return torch.log((torch.exp(cos * temp2) * keep[:, None, :]).sum(dim=-1))


# ------------------------------------------------------------------------------ MGCA
def clipped_weights(weights: Tensor, lo: float = 0.1, hi: float = 0.9, nonzero_only: bool = True) -> Tensor:
    """MGCA's token weights: per row, clip the (non-zero) entries to their 10th-90th
    percentiles, then normalise the row to sum 1.

    All rows at once: the entries left out become NaN and ``torch.nanquantile`` ranks each row's
    remaining entries exactly as ``torch.quantile`` ranks that row's selection, so the result is
    bit-identical to clipping row by row; no host sync."""
    out = weights.detach().float()
    sel = out != 0 if nonzero_only else torch.ones_like(out, dtype=torch.bool)
    q = torch.tensor([lo, hi], dtype=out.dtype, device=out.device)
    bounds = torch.nanquantile(
        out.masked_fill(~sel, float("nan")), q, dim=1, keepdim=True
    )  # (2, B, 1); NaN for empty rows
    out = torch.where(sel, out.clamp(bounds[0], bounds[1]), out)
    return out / out.sum(dim=1, keepdim=True).clamp(min=1e-12)


def _weighted_alignment(query: Tensor, attended: Tensor, weights: Tensor, temperature: float) -> Tensor:
    """Both directions of MGCA's token-level contrast: sim (b, n, n) between each token and
    every token's attended output; cross entropy towards its own index, weighted."""
    b, n, _ = query.shape
    sim = query @ attended.transpose(1, 2) / temperature
    targets = torch.arange(n, device=sim.device).repeat(b)
    w = weights.reshape(-1)
    l1 = (F.cross_entropy(sim.reshape(b * n, n), targets, reduction="none") * w).sum() / b
    l2 = (F.cross_entropy(sim.transpose(1, 2).reshape(b * n, n), targets, reduction="none") * w).sum() / b
    return (l1 + l2) / 2


def mgca_token_loss(
    word_emb: Tensor,
    patch_emb: Tensor,
    word_weights: Tensor,
    patch_weights: Tensor,
    word_pad: Tensor,
    temperature: float = 0.1,
    normalise_patch_output: bool = True,
) -> tuple[Tensor, Tensor]:
    """MGCA's cross-modal token alignment (bidirectional, no learned attention layer).

    word_emb (b, Nw, D) and patch_emb (b, Np, D) L2-normalised; word_weights (b, Nw) and
    patch_weights (b, Np) sum to 1 per row; word_pad (b, Nw) True for padding words (masked
    as keys of the patch->word attention). Returns (word loss, patch loss)."""
    att = (word_emb @ patch_emb.transpose(1, 2) / temperature).softmax(-1)
    word_out = F.normalize(att @ patch_emb, dim=-1)
    loss_word = _weighted_alignment(word_emb, word_out, word_weights, temperature)

    sim = (patch_emb @ word_emb.transpose(1, 2)).masked_fill(word_pad.unsqueeze(1), float("-inf"))
    patch_out = (sim / temperature).softmax(-1) @ word_emb
    if normalise_patch_output:  # MGCA normalises it for ResNets, not for ViTs
        patch_out = F.normalize(patch_out, dim=-1)
    loss_patch = _weighted_alignment(patch_emb, patch_out, patch_weights, temperature)
    return loss_word, loss_patch


AllReduce = Callable[[Tensor], Tensor]


@torch.no_grad()
def sinkhorn(
    scores: Tensor, epsilon: float = 0.05, iterations: int = 3, all_reduce: AllReduce | None = None, world_size: int = 1
) -> Tensor:
    """Sinkhorn-Knopp codes (SwAV / MGCA) for prototype scores (B, K): equipartition over the
    K prototypes across the (global) batch; each sample's code is a distribution (rows sum
    to 1). Under DDP ``all_reduce`` sums the total mass and the prototype marginals across
    ranks (``world_size`` ranks with B samples each), so codes equal those of the global batch."""
    reduce = all_reduce or (lambda t: t)
    Q = torch.exp(scores.float() / epsilon).t()  # (K, B)
    total = reduce(Q.sum())
    Q = Q / total
    K, B = Q.shape
    r = torch.full((K,), 1.0 / K, device=Q.device)
    c = torch.full((B,), 1.0 / (world_size * B), device=Q.device)
    for _ in range(iterations):
        u = reduce(Q.sum(dim=1))
        Q = Q * (r / u).unsqueeze(1)
        Q = Q * (c / Q.sum(dim=0)).unsqueeze(0)
    return (Q / Q.sum(dim=0, keepdim=True)).t()


def prototype_loss(
    img_scores: Tensor, txt_scores: Tensor, img_codes: Tensor, txt_codes: Tensor, temperature: float = 0.2
) -> Tensor:
    """Swapped prediction: image codes supervise text prototype probabilities and vice versa."""
    img_logp = F.log_softmax(img_scores / temperature, dim=1)
    txt_logp = F.log_softmax(txt_scores / temperature, dim=1)
    i2t = -(img_codes * txt_logp).sum(dim=1).mean()
    t2i = -(txt_codes * img_logp).sum(dim=1).mean()
    return (i2t + t2i) / 2
