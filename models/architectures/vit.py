"""timm Vision Transformers as encoders.

:class:`ViTEncoder` builds timm's ``VisionTransformer`` and registers its parts under
timm's names (``cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, norm.*``, plus
``norm_pre.*`` for CLIP-style towers) directly on itself, so a timm ViT state dict (minus
``head``) is exactly its ``state_dict()``. Checkpoint formats that name the tensors otherwise
(OpenAI CLIP, REFERS / ViT-pytorch, ...) rename them into this layout
(``models/formats/``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.errors import CheckpointError, ConfigError
from models.architectures.base import ArchitectureFamily
from models.encoder import Encoder, InputContract


@dataclass(frozen=True)
class ViTConfig:
    """One registered ViT. ``pre_norm``: a LayerNorm after the embeddings (``norm_pre``,
    OpenAI CLIP's ``ln_pre``) and no bias in the patch projection (timm ties the two, as
    CLIP's towers have both); ``norm_eps`` of every LayerNorm; ``act`` the MLP activation
    (``"gelu"``, or ``"quick_gelu"`` = ``x * sigmoid(1.702 x)``, OpenAI CLIP's). The
    activation cannot be read from a checkpoint's tensors: every pre-norm architecture
    registered here is an OpenAI-CLIP-style tower with QuickGELU."""

    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    pre_norm: bool = False
    norm_eps: float = 1e-6
    act: str = "gelu"


_CLIP = dict(pre_norm=True, norm_eps=1e-5, act="quick_gelu")  # OpenAI CLIP's visual transformer

VIT_CONFIGS: dict[str, ViTConfig] = {
    "vit_base_patch16_224": ViTConfig(224, 16, 768, 12, 12),
    "vit_small_patch16_224": ViTConfig(224, 16, 384, 12, 6),
    # OpenAI CLIP image towers (CheXzero is a ViT-B/32 at 224)
    "vit_base_patch32_clip_quickgelu_224": ViTConfig(224, 32, 768, 12, 12, **_CLIP),
    "vit_base_patch16_clip_quickgelu_224": ViTConfig(224, 16, 768, 12, 12, **_CLIP),
    # PTUnifier's tower: METER's copy of CLIP's code builds layers - 1 = 11 blocks; pretrained at 288
    "vit_base_patch16_clip_quickgelu_288_depth11": ViTConfig(288, 16, 768, 11, 12, **_CLIP),
    # tiny, for tests
    "vit_tiny_test": ViTConfig(32, 8, 48, 2, 3),
    "vit_tiny_clip_test": ViTConfig(32, 8, 48, 2, 3, **_CLIP),
}

PYRAMID_STRIDES = (4, 8, 16, 32)


def pyramid_block_indices(depth: int, n: int = 4) -> tuple[int, ...]:
    """``n`` evenly spaced blocks ending with the last: depth 12 -> (2, 5, 8, 11)."""
    return tuple(max(0, ((k + 1) * depth) // n - 1) for k in range(n))


class ViTEncoder(Encoder):
    """A timm ViT (class token, learned absolute position embeddings, final LayerNorm).

    Global feature: the CLS token after the final norm (768-d for ViT-B/16), as timm's
    ``forward_head(forward_features(x), pre_logits=True)`` with ``global_pool="token"``. For
    CLIP towers that is the CLS token after ``ln_post``, before CLIP's ``visual.proj`` (which
    maps it into the joint image-text space and is not loaded).

    Pyramid (a *simple feature pyramid*, as in ViTDet/mmseg's ViT necks but without
    learned layers): the patch-token maps (class token dropped, no final norm) after 4
    evenly spaced blocks (:func:`pyramid_block_indices`), reshaped to (B, C, H/p, W/p)
    and resized bilinearly to strides 4, 8, 16 and 32 respectively; all have
    ``embed_dim`` channels.

    Input size. :meth:`forward_global` (classification) takes exactly ``img_size`` x
    ``img_size`` inputs (``contract.input_size``): the learned position embeddings fix the
    token grid the weights were trained on. :meth:`forward_pyramid` (segmentation,
    detection) takes the task's input size, any height and width that are multiples of the
    patch size: for another grid than the trained one the position embeddings are resized
    to it (:func:`resize_pos_embed`: bicubic over the patch grid, the class token's kept, as
    mmsegmentation's ViT does); at ``img_size`` nothing is resized.
    """

    head_prefixes = ("head.", "head_dist.", "fc_norm.")

    def __init__(self, arch: str, config: ViTConfig, in_chans: int = 3, contract: InputContract | None = None) -> None:
        super().__init__()
        from timm.layers import LayerNorm
        from timm.models.vision_transformer import VisionTransformer

        variant: dict = {}  # only what differs from timm's defaults, so the default towers build as before
        if config.pre_norm:
            variant["pre_norm"] = True  # also drops the patch projection's bias (timm ties the two)
        if config.norm_eps != 1e-6:
            variant["norm_layer"] = partial(LayerNorm, eps=config.norm_eps)
        if config.act != "gelu":
            variant["act_layer"] = config.act
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
            **variant,
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

    def _check_dense_input(self, x: Tensor) -> None:
        p = self.config.patch_size
        if x.dim() != 4 or x.shape[-1] < p or x.shape[-2] < p or x.shape[-1] % p or x.shape[-2] % p:
            raise ConfigError(
                f"{self.arch}: feature maps need inputs whose height and width are multiples of its "
                f"patch size {p} (the position embeddings are resized to the patch grid), got shape "
                f"{tuple(x.shape)}; use an input size such as {max(p, round(x.shape[-1] / p) * p)}"
            )

    def _embed(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.patch_drop(x)
        return self.norm_pre(x)

    def _embed_any_size(self, x: Tensor) -> tuple[Tensor, int, int]:
        """Tokens of an input of any size that is a multiple of the patch size, with the
        position embeddings resized to its patch grid; and the grid's height and width."""
        self._check_dense_input(x)
        patches = self.patch_embed.proj(x)  # (B, C, H/p, W/p): PatchEmbed without its size check
        gh, gw = int(patches.shape[-2]), int(patches.shape[-1])
        tokens = self.patch_embed.norm(patches.flatten(2).transpose(1, 2))
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        g = self.config.img_size // self.config.patch_size
        pos = self.pos_embed if (gh, gw) == (g, g) else resize_pos_embed(self.pos_embed, (gh, gw), (g, g))
        tokens = self.patch_drop(self.pos_drop(tokens + pos))
        return self.norm_pre(tokens), gh, gw

    def forward_global(self, x: Tensor) -> Tensor:
        x = self._embed(x)
        x = self.blocks(x)
        return self.norm(x)[:, 0]

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        B, _, H, W = x.shape
        tokens, gh, gw = self._embed_any_size(x)
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


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int], trained_grid: tuple[int, int]) -> Tensor:
    """Position embeddings (1, 1 + h*w, C) of a ``trained_grid`` (h, w) patch grid, resized to
    ``grid``: the class token's embedding is kept, the patch embeddings are interpolated as a
    (C, h, w) image, bicubic, ``align_corners=False``, without antialiasing, as
    mmsegmentation's ``VisionTransformer.resize_pos_embed``. Computed in float32."""
    h, w = trained_grid
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
    if patch_pos.shape[1] != h * w:
        raise ConfigError(f"position embeddings hold {patch_pos.shape[1]} patch tokens, not a {h}x{w} grid")
    image = patch_pos.float().reshape(1, h, w, -1).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=tuple(grid), mode="bicubic", align_corners=False)
    patch_pos = image.flatten(2).transpose(1, 2).to(pos_embed.dtype)
    return torch.cat([cls_pos, patch_pos], dim=1)


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
        f"{want}. The trained grid fixes a ViT's classification input (dense tasks resize the "
        f"position embeddings to their input size, but only after loading); use a checkpoint "
        f"trained at a registered resolution, pass --arch NAME for a registered ViT of this "
        f"size, or load it through a `module:function` factory that builds the right model."
    )


def looks_like_vit(state_dict: Mapping[str, Tensor]) -> bool:
    return "patch_embed.proj.weight" in state_dict and any(k.startswith("blocks.0.") for k in state_dict)


def infer_vit(state_dict: Mapping[str, Tensor]) -> tuple[str | None, str]:
    """(arch or None, description). Matches depth, embed dim, patch size, whether the tower
    has a pre-norm (``norm_pre.*``, CLIP-style) and the ``pos_embed`` grid. Raises
    CheckpointError on a pos_embed size mismatch."""
    if not looks_like_vit(state_dict):
        return None, ""
    w = state_dict["patch_embed.proj.weight"]
    dim, patch = int(w.shape[0]), int(w.shape[-1])
    depth = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.") and k.split(".")[1].isdigit())
    pre_norm = "norm_pre.weight" in state_dict
    img = vit_input_size(state_dict)
    n_tok = int(state_dict["pos_embed"].shape[1]) if "pos_embed" in state_dict else None
    found = (
        f"timm-style ViT, depth {depth}, embed dim {dim}, patch {patch}"
        + (", pre-norm (CLIP-style)" if pre_norm else "")
        + (f", pos_embed for {img}x{img} inputs" if img else "")
    )
    body = (depth, dim, patch, pre_norm)
    same_body = [n for n, c in VIT_CONFIGS.items() if (c.depth, c.embed_dim, c.patch_size, c.pre_norm) == body]
    for name in same_body:
        if img is None or VIT_CONFIGS[name].img_size == img:
            return name, found
    if same_body and n_tok is not None:
        c = VIT_CONFIGS[same_body[0]]
        raise CheckpointError(pos_embed_advice(n_tok, patch, same_body[0], c.img_size))
    return None, found


def vit_input_size(state_dict: Mapping[str, Tensor]) -> int | None:
    """The square input size a timm-layout ViT state dict was trained at: its ``pos_embed``
    grid (tokens = grid**2 + CLS) times the patch size; None when it cannot be read."""
    w, pe = state_dict.get("patch_embed.proj.weight"), state_dict.get("pos_embed")
    if w is None or w.dim() != 4 or pe is None or pe.dim() != 3:
        return None
    g = pos_embed_grid(int(pe.shape[1]))
    return g * int(w.shape[-1]) if g else None


def vit_in_chans(state_dict: Mapping[str, Tensor]) -> int:
    w = state_dict.get("patch_embed.proj.weight")
    return int(w.shape[1]) if w is not None and w.dim() == 4 else 3


def build_vit(arch: str, in_chans: int = 3) -> ViTEncoder:
    return ViTEncoder(arch, VIT_CONFIGS[arch], in_chans=in_chans)


ARCHITECTURE = ArchitectureFamily(
    tuple(VIT_CONFIGS), build_vit, infer_vit, vit_in_chans
)  # plug-in (benchmark/plugins.py)
