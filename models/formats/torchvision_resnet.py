"""A torchvision-style ResNet state dict (``conv1.weight``, ``layer1.0...``), plain or
nested under ``state_dict``/``model``/..., with or without DDP ``module.`` prefixes."""

from __future__ import annotations

from typing import Any

from models.architectures.resnet import looks_like_resnet
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp


class TorchvisionResNet(CheckpointFormat):
    name = "torchvision_resnet"
    priority = 20
    description = "torchvision-style ResNet state dict"
    source = "https://github.com/pytorch/vision (torchvision.models.resnet)"

    def detect(self, obj: Any) -> bool:
        found = find_state_dict(obj)
        return found is not None and looks_like_resnet(strip_ddp(found[0]))

    def extract(self, obj: Any):
        sd, container = find_state_dict(obj)
        return strip_ddp(sd), {"container": container, "prefix": ""}


FORMAT = TorchvisionResNet()  # this module's plug-in (benchmark/plugins.py)
