"""Helpers for releases that store a torchvision ResNet as ``nn.Sequential(*list(resnet.children())[:n])``.

Such a Sequential names its tensors by child index instead of torchvision's names:
``res_features.0.weight`` is ``conv1.weight``, ``res_features.4.0.conv1.weight`` is
``layer1.0.conv1.weight``. :func:`rename_children` maps them back; :func:`trunk_arch` names the
registered architecture for the result (a full ResNet when ``layer4`` is there, the
``<resnet>_layer3`` trunk of :mod:`models.architectures.resnet_trunk` when the release stops
after layer3). Used by the MedKLIP and KAD formats (a module starting with ``_`` is a helper,
not a plug-in).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from benchmark.errors import CheckpointError
from models.architectures.resnet import infer_resnet
from models.architectures.resnet_trunk import SUFFIX, TRUNK_ARCHS

# torchvision.models.ResNet.children(), in order
RESNET_CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")
WITHOUT_TENSORS = {"relu", "maxpool", "avgpool"}


def rename_children(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix`` (a Sequential of ResNet children) under torchvision's names."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if not index.isdigit() or int(index) >= len(RESNET_CHILDREN) or not rest:
            raise CheckpointError(
                f"{key}: expected {prefix}<child index>.<tensor> with a child index 0-{len(RESNET_CHILDREN) - 1} of "
                f"a torchvision ResNet ({', '.join(f'{i} {n}' for i, n in enumerate(RESNET_CHILDREN))})"
            )
        child = RESNET_CHILDREN[int(index)]
        if child in WITHOUT_TENSORS:
            raise CheckpointError(
                f"{key}: child {index} of a torchvision ResNet is {child}, which has no tensors; this is not the "
                f"Sequential(*resnet.children()) layout"
            )
        out[f"{child}.{rest}"] = value
    return out


def trunk_arch(backbone: Mapping[str, Tensor], where: str) -> str:
    """The registered architecture of a renamed backbone: the full ResNet when it has ``layer4``,
    else its ``_layer3`` trunk."""
    base, found = infer_resnet(backbone)
    if base is None:
        raise CheckpointError(
            f"{where}: the ResNet under it ({found or 'no torchvision-style ResNet layout'}) matches none of the "
            f"registered ResNets; pass --arch NAME if it is one of them"
        )
    if any(k.startswith("layer4.") for k in backbone):
        return base
    trunk = base + SUFFIX
    if trunk not in TRUNK_ARCHS:  # pragma: no cover - every ResNet config has its trunk
        raise CheckpointError(f"{where}: no registered trunk architecture {trunk}")
    return trunk


def count_under(state: Mapping[str, object], prefixes: tuple[str, ...]) -> dict[str, int]:
    """Tensors per top-level prefix (``res_l1``, ``decoder`` ...) among ``state``'s keys outside ``prefixes``."""
    counts: dict[str, int] = {}
    for key in state:
        if key.startswith(prefixes):
            continue
        head = key.split(".", 1)[0]
        counts[head] = counts.get(head, 0) + 1
    return counts
