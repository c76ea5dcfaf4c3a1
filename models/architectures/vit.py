"""timm Vision Transformers as encoders.

:class:`ViTEncoder` builds timm's ``VisionTransformer`` and registers its parts under
timm's names (``cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, norm.*``) directly
on itself, so a timm ViT state dict (minus ``head``) is exactly its ``state_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.errors import CheckpointError, ConfigError
from models.architectures.base import ArchitectureFamily
from models.encoder import Encoder, InputContract


@dataclass(frozen=True)
class ViTConfig:
    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


VIT_CONFIGS: dict[str, ViTConfig] = {
    "vit_base_patch16_224": ViTConfig(224, 16, 768, 12, 12),
    "vit_small_patch16_224": ViTConfig(224, 16, 384, 12, 6),
    # tiny, for tests
    "vit_tiny_test": ViTConfig(32, 8, 48, 2, 3),
}

PYRAMID_STRIDES = (4, 8, 16, 32)


def pyramid_block_indices(depth: int, n: int = 4) -> tuple[int, ...]:
    """``n`` evenly spaced blocks ending with the last: depth 12 -> (2, 5, 8, 11)."""
    return tuple(max(0, ((k + 1) * depth) // n - 1) for k in range(n))


class ViTEncoder(Encoder):
    """A timm ViT (class token, learned absolute position embeddings, final LayerNorm).

    Global feature: the CLS token after the final norm (768-d for ViT-B/16), as timm's
    ``forward_head(forward_features(x), pre_logits=True)`` with ``global_pool="token"``.

    Pyramid (a *simple feature pyramid*, as in ViTDet/mmseg's ViT necks but without
    learned layers): the patch-token maps (class token dropped, no final norm) after 4
    evenly spaced blocks (:func:`pyramid_block_indices`), reshaped to (B, C, H/p, W/p)
    and resized bilinearly to strides 4, 8, 16 and 32 respectively; all have
    ``embed_dim`` channels.

    Inputs must be exactly ``img_size`` x ``img_size`` (``contract.input_size``): the
    learned position embeddings fix the token grid.
    """

    head_prefixes = ("head.", "head_dist.", "fc_norm.")

    def __init__(self, arch: str, config: ViTConfig, in_chans: int = 3, contract: InputContract | None = None) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        vit = VisionTransformer(
            img_size=config.img_size,
            patch_size=config.patch_size,
            in_chans=in_chans,
            num_classes=0,
            global_pool="token",
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
        )
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.pos_drop = vit.pos_drop
        self.patch_drop = vit.patch_drop
        self.norm_pre = vit.norm_pre
        self.blocks = vit.blocks
        self.norm = vit.norm
        del vit

        self.arch = arch
        self.config = config
        self.feature_dim = config.embed_dim
        self.pyramid_channels = (config.embed_dim,) * len(PYRAMID_STRIDES)
        self.pyramid_strides = PYRAMID_STRIDES
        self.pyramid_blocks = pyramid_block_indices(config.depth)
        if contract is None:
            contract = InputContract(
                mean=(0.5,) * in_chans,
                std=(0.5,) * in_chans,
                channels=in_chans,
                input_size=config.img_size,
            )
        self.contract = contract

    def _check_input(self, x: Tensor) -> None:
        s = self.config.img_size
        if x.dim() != 4 or tuple(x.shape[-2:]) != (s, s):
            raise ConfigError(
                f"{self.arch} needs inputs of size {s}x{s} (its input contract), got shape "
                f"{tuple(x.shape)}; resize images to {s}x{s} before prepare()"
            )

    def _embed(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.patch_drop(x)
        return self.norm_pre(x)

    def forward_global(self, x: Tensor) -> Tensor:
        x = self._embed(x)
        x = self.blocks(x)
        return self.norm(x)[:, 0]

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        B, _, H, W = x.shape
        p = self.config.patch_size
        gh, gw = H // p, W // p
        tokens = self._embed(x)
        maps: list[Tensor] = []
        wanted = list(self.pyramid_blocks)
        for i, blk in enumerate(self.blocks):
            tokens = blk(tokens)
            while wanted and wanted[0] == i:
                wanted.pop(0)
                maps.append(tokens[:, 1:].transpose(1, 2).reshape(B, -1, gh, gw))
            if not wanted:
                break
        out = []
        for m, stride in zip(maps, self.pyramid_strides):
            size = (max(1, H // stride), max(1, W // stride))
            if tuple(m.shape[-2:]) != size:
                m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            out.append(m)
        return out

    def explain_shape_mismatch(self, key, checkpoint_shape, model_shape):
        if key == "pos_embed" and len(checkpoint_shape) == 3:
            return pos_embed_advice(checkpoint_shape[1], self.config.patch_size, self.arch, self.config.img_size)
        return None


def pos_embed_grid(n_tokens: int) -> int | None:
    """Side of the square patch grid for ``n_tokens`` position embeddings (incl. CLS)."""
    g = math.isqrt(max(n_tokens - 1, 0))
    return g if g * g == n_tokens - 1 else None


def pos_embed_advice(n_tokens: int, patch: int, arch: str | None, img_size: int | None) -> str:
    g = pos_embed_grid(n_tokens)
    ckpt = (
        f"{n_tokens} tokens = a {g}x{g} patch grid + CLS, i.e. {g * patch}x{g * patch} inputs at patch size {patch}"
        if g
        else f"{n_tokens} tokens (not a square grid + CLS)"
    )
    want = (
        f"{arch} expects {img_size}x{img_size} inputs ({(img_size // patch) ** 2 + 1} tokens)"
        if arch
        else "no registered ViT matches"
    )
    return (
        f"pos_embed size mismatch: the checkpoint's position embeddings have {ckpt}, but "
        f"{want}. The benchmark does not resample position embeddings; use a checkpoint "
        f"trained at the registered resolution, or load it through a `module:function` "
        f"factory that builds the right model."
    )


def looks_like_vit(state_dict: Mapping[str, Tensor]) -> bool:
    return "patch_embed.proj.weight" in state_dict and any(k.startswith("blocks.0.") for k in state_dict)


def infer_vit(state_dict: Mapping[str, Tensor]) -> tuple[str | None, str]:
    """(arch or None, description). Raises CheckpointError on a pos_embed size mismatch."""
    if not looks_like_vit(state_dict):
        return None, ""
    w = state_dict["patch_embed.proj.weight"]
    dim, patch = int(w.shape[0]), int(w.shape[-1])
    depth = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.") and k.split(".")[1].isdigit())
    pe = state_dict.get("pos_embed")
    n_tok = int(pe.shape[1]) if pe is not None and pe.dim() == 3 else None
    g = pos_embed_grid(n_tok) if n_tok else None
    img = g * patch if g else None
    found = f"timm-style ViT, depth {depth}, embed dim {dim}, patch {patch}" + (
        f", pos_embed for {img}x{img} inputs" if img else ""
    )
    same_body = [n for n, c in VIT_CONFIGS.items() if (c.depth, c.embed_dim, c.patch_size) == (depth, dim, patch)]
    for name in same_body:
        if img is None or VIT_CONFIGS[name].img_size == img:
            return name, found
    if same_body and n_tok is not None:
        c = VIT_CONFIGS[same_body[0]]
        raise CheckpointError(pos_embed_advice(n_tok, patch, same_body[0], c.img_size))
    return None, found


def vit_in_chans(state_dict: Mapping[str, Tensor]) -> int:
    w = state_dict.get("patch_embed.proj.weight")
    return int(w.shape[1]) if w is not None and w.dim() == 4 else 3


def build_vit(arch: str, in_chans: int = 3) -> ViTEncoder:
    return ViTEncoder(arch, VIT_CONFIGS[arch], in_chans=in_chans)


ARCHITECTURE = ArchitectureFamily(
    tuple(VIT_CONFIGS), build_vit, infer_vit, vit_in_chans
)  # plug-in (benchmark/plugins.py)
