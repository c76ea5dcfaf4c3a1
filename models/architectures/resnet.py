"""torchvision ResNets as encoders.

:class:`ResNetEncoder` registers torchvision's modules under torchvision's names
(``conv1, bn1, layer1..layer4``) directly on itself, so a torchvision ResNet state dict
(minus ``fc``) is exactly its ``state_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from models.architectures.base import ArchitectureFamily
from models.encoder import Encoder, InputContract


@dataclass(frozen=True)
class ResNetConfig:
    block: str  # "basic" | "bottleneck"
    layers: tuple[int, int, int, int]
    # torchvision weights enum and its default entry (for imagenet:<arch>); None for test archs
    tv_weights: str | None = None


RESNET_CONFIGS: dict[str, ResNetConfig] = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2), "ResNet18_Weights"),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3), "ResNet34_Weights"),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3), "ResNet50_Weights"),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3), "ResNet101_Weights"),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3), "ResNet152_Weights"),
    # tiny, for tests: torchvision ResNet(BasicBlock, [1, 1, 1, 1])
    "resnet_tiny": ResNetConfig("basic", (1, 1, 1, 1), None),
}


class ResNetEncoder(Encoder):
    """A torchvision ResNet without ``fc``.

    Global feature: global average pool of ``layer4`` (512-d for ResNet-18/34, 2048-d for
    ResNet-50/101/152). Pyramid: [stem after ReLU (stride 2), layer1 (4), layer2 (8),
    layer3 (16), layer4 (32)].
    """

    head_prefixes = ("fc.",)

    def __init__(
        self, arch: str, config: ResNetConfig, in_chans: int = 3, contract: InputContract | None = None
    ) -> None:
        super().__init__()
        block = tv_resnet.BasicBlock if config.block == "basic" else tv_resnet.Bottleneck
        net = tv_resnet.ResNet(block, list(config.layers))
        if in_chans != 3:
            net.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        self.avgpool = nn.AdaptiveAvgPool2d(1)

        self.arch = arch
        self.config = config
        e = block.expansion
        self.feature_dim = 512 * e
        self.pyramid_channels = (64, 64 * e, 128 * e, 256 * e, 512 * e)
        self.pyramid_strides = (2, 4, 8, 16, 32)
        if contract is None:
            contract = InputContract(mean=(0.5,) * in_chans, std=(0.5,) * in_chans, channels=in_chans)
        self.contract = contract

    def _stages(self, x: Tensor) -> list[Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [stem, c1, c2, c3, c4]

    def forward_global(self, x: Tensor) -> Tensor:
        return torch.flatten(self.avgpool(self._stages(x)[-1]), 1)

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        return self._stages(x)


def build_resnet(arch: str, in_chans: int = 3) -> ResNetEncoder:
    return ResNetEncoder(arch, RESNET_CONFIGS[arch], in_chans=in_chans)


def _block_counts(state_dict: Mapping[str, Tensor]) -> tuple[int, int, int, int]:
    counts = []
    for layer in range(1, 5):
        idx = set()
        pre = f"layer{layer}."
        for k in state_dict:
            if k.startswith(pre):
                head = k[len(pre) :].split(".", 1)[0]
                if head.isdigit():
                    idx.add(int(head))
        counts.append(max(idx) + 1 if idx else 0)
    return tuple(counts)  # type: ignore[return-value]


def looks_like_resnet(state_dict: Mapping[str, Tensor]) -> bool:
    return "conv1.weight" in state_dict and any(k.startswith("layer1.0.") for k in state_dict)


def infer_resnet(state_dict: Mapping[str, Tensor]) -> tuple[str | None, str]:
    """(arch or None, human description of what was found)."""
    if not looks_like_resnet(state_dict):
        return None, ""
    block = "bottleneck" if "layer1.0.conv3.weight" in state_dict else "basic"
    counts = _block_counts(state_dict)
    found = f"torchvision-style ResNet, {block} blocks, blocks per stage {list(counts)}"
    for name, cfg in RESNET_CONFIGS.items():
        if cfg.block == block and cfg.layers == counts:
            return name, found
    # fall back to the layer3 rule (depth from the number of blocks in layer3)
    for name, cfg in RESNET_CONFIGS.items():
        if cfg.block == block and cfg.layers[2] == counts[2]:
            return name, found
    return None, found


def resnet_in_chans(state_dict: Mapping[str, Tensor]) -> int:
    w = state_dict.get("conv1.weight")
    return int(w.shape[1]) if w is not None and w.dim() == 4 else 3


ARCHITECTURE = ArchitectureFamily(
    tuple(RESNET_CONFIGS), build_resnet, infer_resnet, resnet_in_chans
)  # plug-in (benchmark/plugins.py)
