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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import ConfigError
from models.architectures import build_arch
from models.architectures.resnet import ResNetEncoder
from models.architectures.vit import ViTEncoder

# the text side (BERT tower and tokenizer, word merging, MGCA's heads) is shared with the
# harness's zero-shot side in models/text; re-exported here for the methods
from models.text import GlobalEmbedding, LocalEmbedding, load_bert, load_tokenizer, merge_subwords  # noqa: F401


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

    def __init__(
        self, arch: str, init: str = "random", seed: int = 0, local_layer: str = "layer3", upsample: int = 299
    ):
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
