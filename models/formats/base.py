"""Base classes and registries for checkpoint formats and spec-string sources.

Two kinds of plug-ins, each one file in ``models/formats/``:

* :class:`CheckpointFormat` - a layout of a checkpoint *file*. ``detect(obj)`` looks at
  the loaded object, ``extract(obj)`` returns the backbone tensors with their prefix
  stripped (and, for layouts that name tensors differently, renamed to the architecture's
  own names) plus extra info (``prefix``, ``method_hint``, ignored tensors ...). The info
  may also name the architecture to build (``arch``: wins over inference, loses to
  ``--arch``) and the encoder's input contract (``contract``: an
  :class:`~models.encoder.InputContract` the release was trained with, with
  ``contract_origin`` saying where it comes from, e.g. ``"checkpoint config"`` or
  ``"format default"``; a user's contract still wins). ``source`` names the official
  public code whose layout the format follows; it is recorded with every result. A format
  whose object is a whole model (TorchScript) sets ``builds_encoder`` and implements
  ``build_encoder`` instead. Formats are tried in ``priority`` order (lower first).
* :class:`SpecSource` - an encoder named by a spec string rather than a file
  (``random:resnet50``, ``imagenet:resnet50``, ``pkg.mod:factory``).

A module names its plug-in in ``FORMAT = <CheckpointFormat instance>`` or ``SOURCE = <SpecSource
instance>`` (the project's one registration style, :mod:`benchmark.plugins`);
``models/formats/__init__.py`` scans this package, so adding a format is adding one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from models.encoder import Encoder, InputContract


@dataclass(frozen=True)
class LoadOptions:
    arch: str | None = None
    allow_partial: bool = False
    trust_pickle: bool = False
    input_contract: InputContract | None = None


class CheckpointFormat:
    name: str = ""
    priority: int = 100
    description: str = ""
    source: str = ""  # the official public code (URL) whose key layout this format follows
    builds_encoder: bool = False

    def detect(self, obj: Any) -> bool:
        raise NotImplementedError

    def extract(self, obj: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """(prefix-stripped backbone state dict, extra info)."""
        raise NotImplementedError

    def build_encoder(self, obj: Any, opts: LoadOptions, where: str) -> Encoder:
        """Only for ``builds_encoder`` formats."""
        raise NotImplementedError


@dataclass
class SourceResult:
    encoder: Encoder
    canonical_spec: str
    format: str
    method_hint: str | None = None
    load_report: dict[str, Any] = field(default_factory=dict)
    # content hash identifying the weights (e.g. of a model folder's files); None: hash of canonical_spec
    sha256: str | None = None


class SpecSource:
    scheme: str = ""
    description: str = ""
    source: str = ""  # the official public code (URL) whose layout this source follows, if any
    # True: also claims specs without "scheme:" (checked only when no such file exists)
    implicit: bool = False

    def matches(self, spec: str) -> bool:
        return spec.startswith(self.scheme + ":")

    def matches_implicit(self, spec: str) -> bool:
        return False

    def load(self, spec: str, opts: LoadOptions) -> SourceResult:
        raise NotImplementedError


def by_priority(formats: dict[str, CheckpointFormat]) -> list[CheckpointFormat]:
    return sorted(formats.values(), key=lambda f: (f.priority, f.name))
