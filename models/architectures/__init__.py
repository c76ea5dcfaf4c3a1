"""Architecture registry: ``build_arch(name)`` and ``infer_arch(state_dict)``.

Each architecture family lives in its own module (``resnet.py``, ``vit.py``) and names an
:class:`~models.architectures.base.ArchitectureFamily` (its architecture names, a builder, a
state-dict inference function and an input-channel reader) in ``ARCHITECTURE = ...``. To add
a family, add a module (the project's one registration style, :mod:`benchmark.plugins`);
families are tried in module-name order.
"""

from __future__ import annotations

import sys
from typing import Mapping

import torch
from torch import Tensor

from benchmark.errors import CheckpointError, ConfigError
from benchmark.plugins import discover
from models.architectures.base import ArchitectureFamily
from models.encoder import Encoder

_FAMILIES: list[ArchitectureFamily] = list(
    discover(
        sys.modules[__name__],
        "ARCHITECTURE",
        key=lambda family: family.names[0],
        check=lambda obj: isinstance(obj, ArchitectureFamily),
        skip=("base",),
    ).values()
)

ARCHS: tuple[str, ...] = tuple(n for family in _FAMILIES for n in family.names)


def _family(name: str) -> ArchitectureFamily:
    for fam in _FAMILIES:
        if name in fam.names:
            return fam
    raise ConfigError(f"unknown architecture {name!r}; known architectures: {', '.join(ARCHS)}")


def build_arch(name: str, seed: int | None = None, *, in_chans: int = 3) -> Encoder:
    """Build architecture ``name`` with random initialisation.

    With ``seed``, initialisation is deterministic (same seed -> identical weights) and
    the global torch RNG state (CPU and CUDA) is left untouched; weights are initialised
    on the CPU. ``in_chans`` (1 or 3) is the number of
    input channels of the first layer.
    """
    builder = _family(name).build
    if in_chans not in (1, 3):
        raise ConfigError(f"in_chans must be 1 or 3, got {in_chans}")
    if seed is None:
        return builder(name, in_chans=in_chans)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))  # CPU only: CUDA RNG untouched
        return builder(name, in_chans=in_chans)


def describe_state_dict(state_dict: Mapping[str, Tensor]) -> str:
    """What a (prefix-stripped) state dict looks like, for error messages."""
    for family in _FAMILIES:
        _, found = family.infer(state_dict)
        if found:
            return found
    keys = list(state_dict)
    return f"{len(keys)} tensors, first keys: {', '.join(keys[:8])}" if keys else "no tensors"


def infer_arch(state_dict: Mapping[str, Tensor]) -> str:
    """Name of the registered architecture a prefix-stripped backbone state dict is for.

    ResNets: block type (bottleneck blocks have ``conv3``) and blocks per stage (the
    depth follows from layer3). ViTs: depth, embed dim, patch size and ``pos_embed``
    size. Raises CheckpointError when nothing matches.
    """
    found = []
    for family in _FAMILIES:
        name, desc = family.infer(state_dict)
        if name is not None:
            return name
        if desc:
            found.append(desc)
    what = found[0] if found else describe_state_dict(state_dict)
    raise CheckpointError(
        f"cannot infer the architecture: the backbone tensors look like {what}, which matches "
        f"none of the registered architectures ({', '.join(ARCHS)}). Pass --arch NAME if it is "
        f"one of them, or load the encoder through a `module:function` factory."
    )


def infer_in_chans(state_dict: Mapping[str, Tensor], arch: str) -> int:
    """Input channels of the first layer as stored in the checkpoint (default 3)."""
    n = _family(arch).in_chans(state_dict)
    return n if n in (1, 3) else 3


__all__ = ["ARCHS", "build_arch", "infer_arch", "infer_in_chans", "describe_state_dict"]
