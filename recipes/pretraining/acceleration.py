"""Speed options of the pretraining step that leave the method unchanged.

- ``channels_last``: the CNN's convolution weights and its input in NHWC layout, the layout of
  cuDNN's fastest bf16 / tensor-core kernels. ``auto`` = on for ResNets on CUDA, off on the CPU
  (there it only swaps kernels, and with them the rounding). The image tower converts its input
  itself, so nothing else changes; exported checkpoints are written contiguous (NCHW) as before.
- ``compile``: ``torch.compile`` of the image tower and the BERT, in place
  (``nn.Module.compile``), so parameter names and checkpoints are unchanged. Opt-in: the first
  steps pay the compilation, and inductor's fused kernels reorder floating point (and draw
  dropout masks from their own generator), so compiled runs are not bit-identical to eager ones.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.errors import ConfigError
from recipes.pretraining.encoders import ImageTower

CHANNELS_LAST = ("auto", "on", "off")


def image_towers(method: nn.Module) -> list[ImageTower]:
    return [m for m in method.modules() if isinstance(m, ImageTower)]


def text_models(method: nn.Module) -> list[nn.Module]:
    from transformers import PreTrainedModel

    return [m for m in method.modules() if isinstance(m, PreTrainedModel)]


def wants_channels_last(mode: str, device: torch.device, method: nn.Module) -> bool:
    if mode not in CHANNELS_LAST:
        raise ConfigError(f"--channels-last must be one of {', '.join(CHANNELS_LAST)}, got {mode!r}")
    cnn = any(not t.is_vit for t in image_towers(method))
    return cnn and (mode == "on" or (mode == "auto" and device.type == "cuda"))


def use_channels_last(method: nn.Module) -> None:
    """NHWC convolution weights and inputs for every CNN image tower of ``method``."""
    for tower in image_towers(method):
        if not tower.is_vit:
            tower.to(memory_format=torch.channels_last)
            tower.channels_last = True


def compile_towers(method: nn.Module, backend: str = "inductor") -> int:
    """``torch.compile`` (in place) the image towers and the text models; returns how many
    modules were compiled."""
    modules = image_towers(method) + text_models(method)  # each is called as a module (its __call__ is compiled)
    for m in modules:
        m.compile(backend=backend)
    return len(modules)


def prepare(
    method: nn.Module, device: torch.device, *, channels_last: str = "auto", compile_backend: str | None = None
) -> dict:
    """Apply the options to ``method`` (already on ``device``); returns what was applied (logged)."""
    applied = {"channels_last": wants_channels_last(channels_last, device, method), "compile": compile_backend}
    if applied["channels_last"]:
        use_channels_last(method)
    if compile_backend:
        compile_towers(method, compile_backend)
    return applied
