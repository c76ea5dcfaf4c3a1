"""torchvision ResNets truncated after ``layer3`` (``<resnet>_layer3``), as some releases train them.

MedKLIP's image encoder (``nn.Sequential(*list(resnet50.children())[:-3])``, github.com/
MediaBrain-SJTU/MedKLIP) and KAD's 224-pixel one (``ModelRes``, github.com/xiaoman-zhang/KAD)
keep ``conv1 .. layer3`` and drop ``layer4``: their pretrained weights stop at layer3, and
their patch features are layer3's (1024 channels for ResNet-50, stride 16). Building a full
ResNet for them would put a randomly initialised layer4 between the pretrained weights and
every probe, so these encoders stop where the release stops.

:class:`ResNetTrunkEncoder` registers ``conv1, bn1, layer1..layer3`` under torchvision's names
(its ``state_dict()`` is a torchvision ResNet state dict without ``layer4`` and ``fc``).
Global feature: global average pool of ``layer3`` (1024-d for ResNet-50/101/152, 256-d for
ResNet-18/34). Pyramid: [stem after ReLU (stride 2), layer1 (4), layer2 (8), layer3 (16),
layer3 average-pooled 2x2 (32)]: the last level has no weights of its own (like the ViT
encoders' resampled levels), so the segmentation and detection heads, which read strides up to
32, run unchanged; its size is what a stride-2 ResNet stage would give (``ceil_mode``).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from models.architectures.base import ArchitectureFamily
from models.architectures.resnet import RESNET_CONFIGS, ResNetConfig, ResNetEncoder, looks_like_resnet, resnet_in_chans
from models.encoder import InputContract

SUFFIX = "_layer3"
TRUNK_ARCHS: dict[str, str] = {base + SUFFIX: base for base in RESNET_CONFIGS}  # trunk name -> full ResNet name


class ResNetTrunkEncoder(ResNetEncoder):
    """A torchvision ResNet without ``layer4`` and ``fc`` (see the module docstring)."""

    def __init__(
        self, arch: str, config: ResNetConfig, in_chans: int = 3, contract: InputContract | None = None
    ) -> None:
        super().__init__(arch, config, in_chans=in_chans, contract=contract)
        del self.layer4
        e = 4 if config.block == "bottleneck" else 1
        self.feature_dim = 256 * e
        self.pyramid_channels = (64, 64 * e, 128 * e, 256 * e, 256 * e)
        self.pyramid_strides = (2, 4, 8, 16, 32)

    def _trunk(self, x: Tensor) -> list[Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [stem, c1, c2, c3]

    def forward_global(self, x: Tensor) -> Tensor:
        return torch.flatten(self.avgpool(self._trunk(x)[-1]), 1)

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        levels = self._trunk(x)
        return [*levels, F.avg_pool2d(levels[-1], kernel_size=2, stride=2, ceil_mode=True)]


def build_resnet_trunk(arch: str, in_chans: int = 3) -> ResNetTrunkEncoder:
    return ResNetTrunkEncoder(arch, RESNET_CONFIGS[TRUNK_ARCHS[arch]], in_chans=in_chans)


def infer_resnet_trunk(state_dict: Mapping[str, Tensor]) -> tuple[str | None, str]:
    """A torchvision-style ResNet layout with ``layer1..layer3`` and no ``layer4``.

    (The ResNet family is asked first and names such a layout by its layer3 depth, so this
    answers only for layouts it does not claim; formats that know their release stops at
    layer3 name the trunk architecture themselves.)"""
    if not looks_like_resnet(state_dict) or any(k.startswith("layer4.") for k in state_dict):
        return None, ""
    block = "bottleneck" if "layer1.0.conv3.weight" in state_dict else "basic"
    depth3 = len({k.split(".")[1] for k in state_dict if k.startswith("layer3.")})
    found = f"torchvision-style ResNet trunk (no layer4), {block} blocks, {depth3} blocks in layer3"
    for name, base in TRUNK_ARCHS.items():
        cfg = RESNET_CONFIGS[base]
        if cfg.block == block and cfg.layers[2] == depth3:
            return name, found
    return None, found


ARCHITECTURE = ArchitectureFamily(
    tuple(TRUNK_ARCHS), build_resnet_trunk, infer_resnet_trunk, resnet_in_chans
)  # plug-in (benchmark/plugins.py)
