"""Hugging Face ``transformers`` vision backbones as encoders: ViT, DINOv2, Swin, CLIP vision.

:class:`HFVisionEncoder` builds the ``transformers`` base model from a config, offline and with
random weights (``AutoModel.from_config``); the weights come from a checkpoint afterwards
(:mod:`models.formats.hf_folder` for model folders, :mod:`models.formats.medclip` for MedCLIP's
Swin). The model is kept as the child ``hf``, but the encoder's ``state_dict()`` speaks the
checkpoint's names: the key each tensor has in a file written by ``save_pretrained`` (the public
layout, e.g. ``encoder.layer.0.attention.attention.query.weight`` of a ViT, which transformers 5
holds as ``layers.0.attention.q_proj.weight``), so a prefix-stripped checkpoint is exactly its
state dict and loads through :func:`models.state_loading.load_backbone_state` like every other
architecture (strict, missing and unexpected tensors named as in the file). The renaming is
transformers' own (``revert_weight_conversion``, the table ``save_pretrained`` uses); with a
transformers release without it, module names are the checkpoint names.

Global feature (``forward_global``), per model type:

* ``vit``: the CLS token after the final layernorm (``last_hidden_state[:, 0]``); ``ViTModel``'s
  pooler (dense + tanh, trained only by supervised classification pretraining) is not built, its
  tensors are ignored as a head;
* ``dinov2``: the CLS token after the final layernorm (``last_hidden_state[:, 0]``, which is
  also its ``pooler_output``);
* ``clip_vision_model``: ``pooler_output``, the CLS token after ``post_layernorm``, before the
  ``visual_projection`` (CLIP's image embedding is that projection of it);
* ``swin``: ``pooler_output``, the average over tokens of the final layernorm's output.

Pyramid (``forward_pyramid``), 4 levels at strides 4, 8, 16, 32:

* ViT, DINOv2, CLIP: the patch-token maps (CLS dropped, no final norm) after 4 evenly spaced
  blocks (:func:`models.architectures.vit.pyramid_block_indices`, the rule of the timm ViT),
  resized bilinearly to strides 4, 8, 16, 32; ``hidden_size`` channels each. Dense tasks run at
  the task's input size, so the position embeddings are interpolated to its patch grid
  (``interpolate_pos_encoding=True`` for ViT and CLIP; DINOv2 interpolates by itself; at the
  model's own size this is the identity).
* Swin: its 4 stage outputs before patch merging (``reshaped_hidden_states[1:5]`` with
  ``output_hidden_states=True, output_hidden_states_before_downsampling=True``, as transformers'
  ``SwinBackbone`` takes them, without the backbone's extra layernorms), strides ``patch * 1, 2,
  4, 8`` (4-32 for patch 4) and channels ``embed_dim * 1, 2, 4, 8``.

The registered Swin architectures (:data:`SWIN_CONFIGS`) serve checkpoints that are a Swin's
state dict without a config.json (MedCLIP's ``vision_model.model.*``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.errors import CheckpointError, ConfigError
from models.architectures.base import ArchitectureFamily
from models.architectures.vit import pyramid_block_indices
from models.encoder import Encoder, InputContract

PYRAMID_STRIDES = (4, 8, 16, 32)
CHILD = "hf."  # the transformers model's name inside the encoder
# buffers the models recompute in __init__ (non-persistent) that older transformers releases saved
# in checkpoints: Swin's relative_position_index (4.x), CLIP's position_ids; such keys are skipped
RECOMPUTED_BUFFERS: dict[str, frozenset[str]] = {
    "vit": frozenset(),
    "dinov2": frozenset(),
    "clip_vision_model": frozenset({"position_ids"}),
    "swin": frozenset({"relative_position_index"}),
}

# model_type -> (transformers class built, global feature, head tensors ignored when loading)
KINDS: dict[str, dict[str, Any]] = {
    "vit": {
        "class": "ViTModel",
        "global": "CLS token after the final layernorm (last_hidden_state[:, 0]); ViTModel's pooler is not used",
        "heads": ("pooler.",),
        "interpolate": True,
    },
    "dinov2": {
        "class": "Dinov2Model",
        "global": "CLS token after the final layernorm (last_hidden_state[:, 0] = pooler_output)",
        "heads": (),
        "interpolate": False,  # Dinov2Model always interpolates its position embeddings
    },
    "clip_vision_model": {
        "class": "CLIPVisionModel",
        "global": "pooler_output: CLS token after post_layernorm, before visual_projection",
        "heads": (),
        "interpolate": True,
    },
    "swin": {
        "class": "SwinModel",
        "global": "pooler_output: average of the final layernorm's tokens",
        "heads": (),
        "interpolate": True,
    },
}

# Swin architectures usable without a config.json. microsoft/swin-tiny-patch4-window7-224 (the
# vision model of MedCLIP, constants.VIT_TYPE) as published in its config.json: image 224, patch 4,
# embed_dim 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7, MLP ratio 4, qkv bias, no
# absolute position embeddings, layernorm eps 1e-5, GELU, dropout 0 (drop path 0.1, inactive in eval).
SWIN_CONFIGS: dict[str, dict[str, Any]] = {
    "hf_swin_tiny_patch4_window7_224": dict(
        image_size=224,
        patch_size=4,
        embed_dim=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4.0,
        qkv_bias=True,
        use_absolute_embeddings=False,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        drop_path_rate=0.1,
    ),
    # tiny, for tests
    "hf_swin_test": dict(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 2, 4],
        window_size=2,
        mlp_ratio=2.0,
    ),
}


def build_hf_model(config) -> torch.nn.Module:
    """The transformers base model of ``config`` (a ``PretrainedConfig`` of a type in
    :data:`KINDS`), randomly initialised, offline, in float32 and eval mode."""
    from transformers import AutoModel

    kind = KINDS.get(config.model_type)
    if kind is None:
        raise ConfigError(
            f"transformers model type {config.model_type!r} is not supported as an image encoder; "
            f"supported: {', '.join(KINDS)}"
        )
    extra = {"add_pooling_layer": False} if config.model_type == "vit" else {}
    model = AutoModel.from_config(config, dtype=torch.float32, **extra)
    if type(model).__name__ != kind["class"]:
        raise ConfigError(
            f"config model_type {config.model_type!r} built a {type(model).__name__}, expected {kind['class']}"
        )
    return model.eval()


def checkpoint_names(model: torch.nn.Module) -> dict[str, str]:
    """``{model state-dict key: the key save_pretrained writes}`` for a transformers model."""
    state = model.state_dict()
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:  # a transformers release without conversion tables: module names are file names
        return {k: k for k in state}
    names: dict[str, str] = {}
    for key, tensor in state.items():
        reverted = revert_weight_conversion(model, {key: tensor})
        if len(reverted) != 1:
            raise ConfigError(
                f"{type(model).__name__}: transformers stores {key} as {len(reverted)} checkpoint tensors "
                f"({', '.join(reverted)}); only one-to-one renamings are supported"
            )
        names[key] = next(iter(reverted))
    if len(set(names.values())) != len(names):
        raise ConfigError(f"{type(model).__name__}: two tensors have the same checkpoint name")
    return names


def _rename_out(module: HFVisionEncoder, state_dict, prefix: str, local_metadata) -> None:
    """state_dict() post-hook: module names -> checkpoint names (order kept)."""
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        own = key[len(prefix) :] if key.startswith(prefix) else None
        if own is not None and own in module._to_checkpoint:
            key = prefix + module._to_checkpoint[own]
        state_dict[key] = value


def _rename_in(module: HFVisionEncoder, state_dict, prefix: str, *args) -> None:
    """load_state_dict() pre-hook: checkpoint names -> module names."""
    for name, own in module._to_module.items():
        if prefix + name in state_dict and name != own:
            state_dict[prefix + own] = state_dict.pop(prefix + name)


class HFVisionEncoder(Encoder):
    """A transformers vision base model (ViT, DINOv2, Swin, CLIP vision) as an :class:`Encoder`
    (global feature and pyramid: see the module docstring).

    The default contract is the benchmark's (mean 0.5, std 0.5) at the config's ``image_size``
    (classification feeds that size; dense tasks their own, see the module docstring); a model
    folder's ``preprocessor_config.json`` gives its own (:mod:`models.formats.hf_folder`)."""

    def __init__(self, config, *, arch: str | None = None, contract: InputContract | None = None) -> None:
        super().__init__()
        self.hf = build_hf_model(config)
        self.model_type = config.model_type
        kind = KINDS[self.model_type]
        self.arch = arch or f"hf_{self.model_type}"
        self.head_prefixes = tuple(kind["heads"])
        self._kind = kind
        self.patch_size = int(config.patch_size)
        self.image_size = int(config.image_size)
        channels = int(getattr(config, "num_channels", 3))
        if self.model_type == "swin":
            n = len(config.depths)
            self.feature_dim = int(config.embed_dim * 2 ** (n - 1))
            self.pyramid_channels = tuple(int(config.embed_dim * 2**i) for i in range(n))
            self.pyramid_strides = tuple(self.patch_size * 2**i for i in range(n))
            self.pyramid_blocks: tuple[int, ...] = ()
            self.swin_windows = native_swin_windows(self.hf)
            self.config_summary = {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "embed_dim": int(config.embed_dim),
                "depths": [int(d) for d in config.depths],
                "num_heads": [int(h) for h in config.num_heads],
                "window_size": int(config.window_size),
            }
        else:
            self.feature_dim = int(config.hidden_size)
            self.pyramid_channels = (self.feature_dim,) * len(PYRAMID_STRIDES)
            self.pyramid_strides = PYRAMID_STRIDES
            self.pyramid_blocks = pyramid_block_indices(int(config.num_hidden_layers))
            self.swin_windows = ()
            self.config_summary = {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "hidden_size": self.feature_dim,
                "num_hidden_layers": int(config.num_hidden_layers),
                "num_attention_heads": int(config.num_attention_heads),
            }
        if contract is None:
            contract = InputContract(
                mean=(0.5,) * channels, std=(0.5,) * channels, channels=channels, input_size=self.image_size
            )
        self.contract = contract
        names = checkpoint_names(self.hf)
        self._to_checkpoint = {CHILD + k: v for k, v in names.items()}
        self._to_module = {v: k for k, v in self._to_checkpoint.items()}
        persistent = set(self.hf.state_dict())
        # the model's own non-persistent buffers (recomputed), with the ones the table names
        self.derived_buffer_names = RECOMPUTED_BUFFERS[self.model_type] | frozenset(
            name.rsplit(".", 1)[-1] for name, _ in self.hf.named_buffers() if name not in persistent
        )
        self.register_state_dict_post_hook(_rename_out)
        self.register_load_state_dict_pre_hook(_rename_in)

    # -- features -------------------------------------------------------------------------
    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.contract.channels or min(x.shape[-2:]) < self.patch_size:
            raise ConfigError(
                f"{self.arch} expects prepared images (B, {self.contract.channels}, H, W) with H, W >= its patch "
                f"size {self.patch_size}, got shape {tuple(x.shape)}"
            )

    def _run(self, x: Tensor, hidden: bool):
        self._check(x)
        kwargs: dict[str, Any] = {"return_dict": True}
        if self._kind["interpolate"]:
            kwargs["interpolate_pos_encoding"] = True
        if self.model_type == "swin":
            # windows and shifts as at the model's own image size, whatever this input's size
            for block, (window, shift) in zip(swin_blocks(self.hf), self.swin_windows):
                block.window_size, block.shift_size = window, shift
            kwargs["always_partition"] = True
        if hidden:
            kwargs["output_hidden_states"] = True
            if self.model_type == "swin":
                kwargs["output_hidden_states_before_downsampling"] = True
        return self.hf(pixel_values=x, **kwargs)

    def forward_global(self, x: Tensor) -> Tensor:
        out = self._run(x, hidden=False)
        if self.model_type in ("vit", "dinov2"):
            return out.last_hidden_state[:, 0]
        return out.pooler_output

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        out = self._run(x, hidden=True)
        if self.model_type == "swin":
            return list(out.reshaped_hidden_states[1 : 1 + len(self.pyramid_strides)])
        B, _, H, W = x.shape
        gh, gw = H // self.patch_size, W // self.patch_size
        maps = []
        for block, stride in zip(self.pyramid_blocks, self.pyramid_strides):
            tokens = out.hidden_states[block + 1]
            if tokens.shape[1] != 1 + gh * gw:
                raise ConfigError(
                    f"{self.arch}: block {block} returned {tokens.shape[1]} tokens for a {gh}x{gw} patch grid + CLS"
                )
            grid = tokens[:, 1:].transpose(1, 2).reshape(B, -1, gh, gw)
            size = (max(1, H // stride), max(1, W // stride))
            if tuple(grid.shape[-2:]) != size:
                grid = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
            maps.append(grid)
        return maps

    # -- provenance -----------------------------------------------------------------------
    def pyramid_rule(self) -> str:
        if self.model_type == "swin":
            return (
                "stage outputs before patch merging (reshaped_hidden_states[1:5], "
                "output_hidden_states_before_downsampling=True)"
            )
        return (
            f"patch-token maps after blocks {list(self.pyramid_blocks)} (CLS dropped, no final norm), resized "
            f"bilinearly to strides {list(self.pyramid_strides)}; position embeddings interpolated to the input"
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "hf_class": self._kind["class"],
            "hf_model_type": self.model_type,
            "hf_config": dict(self.config_summary),
            "global_feature": self._kind["global"],
            "pyramid": self.pyramid_rule(),
        }


def swin_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The shifted-window blocks (``SwinLayer``) of a transformers Swin, in order."""
    return [m for m in model.modules() if type(m).__name__ == "SwinLayer"]


def native_swin_windows(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """(window, shift) of each Swin block at the model's own image size: a stage whose patch grid
    is not larger than the window gets one window covering it and no shift (the original Swin's
    rule, which transformers applies per call). transformers re-decides this on every call and
    keeps what it decided (a smaller input shrinks the windows for the calls after it) and fails
    when a stage is smaller than a window (the relative position bias has the window's size), so the
    encoder fixes these values and runs with ``always_partition=True``: at the model's own size
    that is exactly transformers' forward; at other sizes the windows keep their size and the maps
    are zero-padded to window multiples (as mmseg's and mmdet's Swin backbones do)."""
    out = []
    for block in swin_blocks(model):
        window, shift = int(block.window_size), int(block.shift_size)
        side = min(int(r) for r in block.input_resolution)
        if side < window:
            raise ConfigError(
                f"this Swin configuration gives a stage a {side}x{side} patch grid at its image_size, smaller than "
                f"its window ({window}); transformers' SwinModel cannot run such a stage (its relative position "
                f"bias is sized for the window). Check image_size, patch_size and window_size in the config"
            )
        out.append((window, 0) if side == window else (window, shift))
    return tuple(out)


def split_derived_buffers(names: frozenset[str], state_dict: Mapping[str, Tensor]):
    """(state dict without the buffers the model recomputes, the keys left out); ``names``: the
    buffers' last name component (:attr:`HFVisionEncoder.derived_buffer_names` or
    :data:`RECOMPUTED_BUFFERS`)."""
    derived = [k for k in state_dict if k.rsplit(".", 1)[-1] in names]
    return {k: v for k, v in state_dict.items() if k not in set(derived)}, derived


# -- registered Swin architectures (state dicts without a config.json) ---------------------
def swin_config(name: str, in_chans: int = 3):
    from transformers import SwinConfig

    return SwinConfig(**SWIN_CONFIGS[name], num_channels=in_chans)


def build_swin(name: str, in_chans: int = 3) -> HFVisionEncoder:
    return HFVisionEncoder(swin_config(name, in_chans), arch=name)


SWIN_PATCH = "embeddings.patch_embeddings.projection.weight"
_BLOCK = re.compile(r"^encoder\.layers\.(\d+)\.blocks\.(\d+)\.")
_TABLE = re.compile(r"^encoder\.layers\.(\d+)\.blocks\.0\.attention\.self\.relative_position_bias_table$")


def looks_like_hf_swin(state_dict: Mapping[str, Tensor]) -> bool:
    return SWIN_PATCH in state_dict and any(k.startswith("encoder.layers.0.blocks.0.") for k in state_dict)


def infer_swin(state_dict: Mapping[str, Tensor]) -> tuple[str | None, str]:
    """(registered Swin name or None, description) of a prefix-stripped transformers Swin state
    dict in the checkpoint layout."""
    if not looks_like_hf_swin(state_dict):
        return None, ""
    w = state_dict[SWIN_PATCH]
    embed_dim, patch = int(w.shape[0]), int(w.shape[-1])
    blocks: dict[int, set[int]] = {}
    heads: dict[int, int] = {}
    window = None
    for key, value in state_dict.items():
        m = _BLOCK.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        t = _TABLE.match(key)
        if t and value.dim() == 2:
            heads[int(t.group(1))] = int(value.shape[1])
            side = math.isqrt(int(value.shape[0]))
            window = (side + 1) // 2 if side * side == int(value.shape[0]) else None
    depths = [len(blocks[i]) for i in sorted(blocks)]
    num_heads = [heads.get(i) for i in sorted(blocks)]
    found = (
        f"transformers Swin, embed dim {embed_dim}, patch {patch}, depths {depths}, heads {num_heads}, window {window}"
    )
    for name, cfg in SWIN_CONFIGS.items():
        if (cfg["embed_dim"], cfg["patch_size"], list(cfg["depths"]), list(cfg["num_heads"]), cfg["window_size"]) == (
            embed_dim,
            patch,
            depths,
            num_heads,
            window,
        ):
            return name, found
    return None, found


def swin_in_chans(state_dict: Mapping[str, Tensor]) -> int:
    w = state_dict.get(SWIN_PATCH)
    return int(w.shape[1]) if w is not None and w.dim() == 4 else 3


def unknown_swin_error(found: str) -> CheckpointError:
    return CheckpointError(
        f"the Swin tensors look like {found}, which matches none of the registered Swin architectures "
        f"({', '.join(SWIN_CONFIGS)}). Save it as a Hugging Face model folder (config.json + weights) and pass "
        f"the folder, or load it through a `module:function` factory."
    )


ARCHITECTURE = ArchitectureFamily(
    tuple(SWIN_CONFIGS), build_swin, infer_swin, swin_in_chans
)  # plug-in (benchmark/plugins.py)
