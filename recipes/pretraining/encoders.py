"""Image and text towers shared by the methods.

Image: a registered harness architecture (``models.architectures``; torchvision ResNet or
timm ViT key names) held as ``.model``, so ``<method prefix>.model.<backbone key>`` in the
checkpoint is exactly what ``run_benchmark.py`` auto-detects. Its forward gives the global
feature (ResNet: average pool of layer4; ViT: CLS after the final norm), local features
(ResNet: ``layer3`` as in MGCA's and GLoRIA's ``resnet_forward``; ViT: patch tokens after
the final norm) and, for ViT, the last block's CLS->patch attention (MGCA's patch weights).
ResNet inputs are upsampled to 299x299 (bilinear, align_corners) first, as both official
codes do.

Text: a Hugging Face BERT read from a local directory only (``local_files_only``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import ConfigError
from models.architectures import build_arch
from models.architectures.resnet import ResNetEncoder
from models.architectures.vit import ViTEncoder


IMAGENET_INITS = {"imagenet": "", "imagenet-v1": "@IMAGENET1K_V1", "imagenet-v2": "@IMAGENET1K_V2"}


def image_init_spec(arch: str, init: str) -> str:
    """The harness spec of ``--image-init``: ``imagenet`` = torchvision's default weights (V2 for
    ResNet-50, what MGCA's ``ResNet50_Weights.DEFAULT`` loads), ``imagenet-v1`` = IMAGENET1K_V1
    (what torchvision's old ``pretrained=True`` loads, as GLoRIA's code does), ``imagenet-v2``;
    anything else is passed through (a checkpoint path or ``--encoder`` spec)."""
    if init in IMAGENET_INITS:
        return f"imagenet:{arch}{IMAGENET_INITS[init]}"
    return init


def build_image_model(arch: str, init: str = "random", seed: int = 0):
    """``init``: ``random`` (seeded), ``imagenet`` / ``imagenet-v1`` / ``imagenet-v2``
    (torchvision weights from the local torch hub cache, see :func:`image_init_spec`) or any
    ``--encoder`` spec / checkpoint path the harness can load."""
    if init == "random":
        enc = build_arch(arch, seed=seed)
    else:
        from models.loading import load_encoder

        spec = image_init_spec(arch, init)
        loaded = load_encoder(spec, arch=arch)
        enc = build_arch(arch, seed=seed)
        enc.load_state_dict(loaded.encoder.state_dict())
    enc.unfreeze()
    enc.train()
    return enc


class ImageTower(nn.Module):
    """``.model`` = backbone; returns (global (B, C), local tokens (B, N, C_l), grid (h, w),
    CLS attention (B, N) or None)."""

    def __init__(self, arch: str, init: str = "random", seed: int = 0, local_layer: str = "layer3", upsample: int = 299):
        super().__init__()
        self.model = build_image_model(arch, init, seed)
        self.arch = arch
        self.is_vit = isinstance(self.model, ViTEncoder)
        self.local_layer = local_layer
        self.upsample = upsample if not self.is_vit else 0
        self.channels_last = False  # recipes.pretraining.acceleration: NHWC input for NHWC weights
        if isinstance(self.model, ResNetEncoder):
            stage = {"layer3": 3, "layer4": 4}.get(local_layer)
            if stage is None:
                raise ConfigError(f"--local-layer must be layer3 or layer4, got {local_layer!r}")
            self._stage = stage
            self.feature_dim = self.model.feature_dim
            self.local_dim = self.model.pyramid_channels[stage]
        elif self.is_vit:
            self.feature_dim = self.local_dim = self.model.feature_dim
        else:  # pragma: no cover
            raise ConfigError(f"pretraining supports ResNet and ViT architectures, got {arch}")

    def forward(self, x: Tensor, want_attention: bool = False):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        m = self.model
        if not self.is_vit:
            if self.upsample:
                x = F.interpolate(x, size=(self.upsample, self.upsample), mode="bilinear", align_corners=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            stages = m.forward_pyramid(x)
            local = stages[self._stage]
            glob = torch.flatten(m.avgpool(stages[-1]), 1)
            h, w = local.shape[-2:]
            return glob, local.flatten(2).transpose(1, 2), (h, w), None
        tokens = m._embed(x)
        blocks = list(m.blocks)
        for blk in blocks[:-1]:
            tokens = blk(tokens)
        attn = _cls_attention(blocks[-1], tokens) if want_attention else None
        tokens = m.norm(blocks[-1](tokens))
        g = m.config.img_size // m.config.patch_size
        return tokens[:, 0], tokens[:, 1:], (g, g), attn


@torch.no_grad()
def _cls_attention(block, tokens: Tensor) -> Tensor:
    """Mean over heads of the CLS row of ``block``'s self-attention, CLS column dropped."""
    att = block.attn
    y = block.norm1(tokens)
    B, N, C = y.shape
    qkv = att.qkv(y).reshape(B, N, 3, att.num_heads, C // att.num_heads).permute(2, 0, 3, 1, 4)
    q, k = att.q_norm(qkv[0]), att.k_norm(qkv[1])
    scores = (q[:, :, :1] * att.scale) @ k.transpose(-2, -1)  # (B, H, 1, N)
    return scores.float().softmax(-1).mean(1)[:, 0, 1:]


# ------------------------------------------------------------------------------ text
def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"tokenizer directory {path} not found (a local Hugging Face tokenizer folder, e.g. Bio_ClinicalBERT)")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


_UNUSED_BERT_PARTS = ("pooler.", "cls.")  # the pooler and the pretraining (MLM / NSP) heads


def load_bert(path: str | Path, *, num_layers: int | None = None, attentions: bool = False, log=print):
    """BERT without pooler from a local directory; ``num_layers`` keeps the first N layers
    (MGCA: 6 of Bio_ClinicalBERT's 12). Eager attention when attention maps are needed.

    Loaded quietly and checked: every tensor of the kept model must come from the folder (a
    missing one is an error, not a silently random layer), and the tensors left over must be
    those of the dropped layers, the pooler or the pretraining heads. Instead of the library's
    table of "unexpected" keys, one line says what was kept (through ``log``)."""
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"--text-encoder {path}: no config.json; expected a local Hugging Face BERT folder (e.g. Bio_ClinicalBERT)")
    config = BertConfig.from_pretrained(str(path), local_files_only=True)
    total_layers = config.num_hidden_layers
    if num_layers:
        config.num_hidden_layers = min(num_layers, total_layers)
    kept = config.num_hidden_layers
    config._attn_implementation = "eager" if attentions else "sdpa"
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = BertModel.from_pretrained(str(path), config=config, add_pooling_layer=False, local_files_only=True,
                                                output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys") or [])
    mismatched = list(info.get("mismatched_keys") or [])
    if missing or mismatched:
        raise ConfigError(f"--text-encoder {path}: the folder's weights do not fill the BERT its config.json describes: "
                          f"{len(missing)} missing tensor(s) {missing[:4]}, {len(mismatched)} of another shape {mismatched[:2]}")
    dropped_layers = {f"encoder.layer.{i}." for i in range(kept, total_layers)}
    leftover = sorted(info.get("unexpected_keys") or [])
    of_dropped = [k for k in leftover if any(k.startswith(prefix) for prefix in dropped_layers)]
    unused = [k for k in leftover if k.startswith(_UNUSED_BERT_PARTS)]
    strange = sorted(set(leftover) - set(of_dropped) - set(unused))
    if strange:
        raise ConfigError(f"--text-encoder {path}: {len(strange)} tensor(s) in the folder belong to no part of a BERT encoder "
                          f"(e.g. {strange[:4]}); is it a BERT checkpoint?")
    if kept < total_layers:
        log(f"text tower: kept {kept} of {total_layers} BERT layers as the method specifies "
            f"({len(of_dropped)} tensors of layers {kept}-{total_layers - 1} not loaded)")
    return model


def merge_subwords(features: Tensor, slots: Tensor) -> Tensor:
    """Sum token features into word slots: (B, T, D) x (B, T) -> (B, T, D); slot T drops a
    token (after [SEP]); unused slots are zero."""
    B, T = slots.shape
    shape = features.shape[2:]
    out = features.new_zeros((B, T + 1, *shape))
    idx = slots.view(B, T, *([1] * len(shape))).expand(B, T, *shape)
    return out.scatter_add(1, idx, features)[:, :T]


class GlobalEmbedding(nn.Module):
    """MGCA's projection: Linear -> BN -> ReLU -> Linear -> BN(affine=False)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                                  nn.Linear(hidden_dim, output_dim), nn.BatchNorm1d(output_dim, affine=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x)


class LocalEmbedding(nn.Module):
    """MGCA's token projection: 1x1 Conv1d -> BN -> ReLU -> 1x1 Conv1d -> BN(affine=False), on (B, N, C)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.head = nn.Sequential(nn.Conv1d(input_dim, hidden_dim, 1), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                                  nn.Conv1d(hidden_dim, output_dim, 1), nn.BatchNorm1d(output_dim, affine=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x.transpose(1, 2)).transpose(1, 2)
