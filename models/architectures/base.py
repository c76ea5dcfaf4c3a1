"""What an architecture family module provides (see :mod:`models.architectures`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor

from models.encoder import Encoder


@dataclass(frozen=True)
class ArchitectureFamily:
    """Names of the family's architectures and its three functions.

    ``build(name, in_chans=...)`` returns a randomly initialised :class:`Encoder`;
    ``infer(state_dict)`` returns ``(name or None, description of what the tensors look like)``;
    ``in_chans(state_dict)`` the input channels stored in a checkpoint."""

    names: tuple[str, ...]
    build: Callable[..., Encoder]
    infer: Callable[[Mapping[str, Tensor]], tuple[str | None, str]]
    in_chans: Callable[[Mapping[str, Tensor]], int]
