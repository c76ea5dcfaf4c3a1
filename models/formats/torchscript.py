"""A TorchScript module (``torch.jit.save``): the module maps a prepared batch to the
global feature. No feature pyramid, so classification only."""

from __future__ import annotations

from typing import Any

import torch

from benchmark.errors import ConfigError
from models.encoder import Encoder, InputContract
from models.formats.base import CheckpointFormat, LoadOptions
from models.wrapped import ModuleEncoder


class TorchScript(CheckpointFormat):
    name = "torchscript"
    priority = 0
    description = "TorchScript module (global feature only)"
    builds_encoder = True
    source = "https://pytorch.org/docs/stable/jit.html (a TorchScript module carries its own code)"

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, torch.jit.ScriptModule)

    def build_encoder(self, obj: Any, opts: LoadOptions, where: str) -> Encoder:
        if opts.arch is not None:
            raise ConfigError(
                f"{where}: --arch {opts.arch} cannot be used with a TorchScript module, which "
                f"carries its own architecture; drop --arch"
            )
        contract = opts.input_contract or InputContract()
        return ModuleEncoder(obj, arch="torchscript", contract=contract, source=where)


FORMAT = TorchScript()  # this module's plug-in (benchmark/plugins.py)
