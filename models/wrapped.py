"""Encoders around opaque modules (TorchScript files, plain ``nn.Module`` factories)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.errors import CheckpointError, ConfigError
from models.encoder import Encoder, InputContract


def _as_feature(out, where: str) -> Tensor:
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        out = out[0]
    if not isinstance(out, Tensor):
        raise CheckpointError(
            f"{where}: the module returned {type(out).__name__}, expected a tensor (B, D) "
            f"(or (B, C, H, W), which is average-pooled)"
        )
    if out.dim() == 4:
        return out.mean(dim=(2, 3))
    if out.dim() == 1:
        return out.unsqueeze(1)
    return out.flatten(1)


class ModuleEncoder(Encoder):
    """Wraps a module whose ``forward`` maps a prepared batch to a global feature.

    Global feature: the module's output, flattened to (B, D); a 4-D output (B, C, H, W) is
    global-average-pooled first, a tuple/list output uses its first element. There is no
    feature pyramid: :meth:`forward_pyramid` raises ConfigError (segmentation and
    detection need one; implement an :class:`Encoder` subclass for them).
    ``feature_dim`` is found by running the module once on a zero input of the contract's
    size (224 when the contract has no fixed size).
    """

    def __init__(
        self, module: nn.Module, *, arch: str, contract: InputContract, source: str, probe_size: int = 224
    ) -> None:
        super().__init__()
        self.module = module
        self.arch = arch
        self.contract = contract
        self.source = source
        self.pyramid_channels = ()
        self.pyramid_strides = ()
        size = contract.input_size or probe_size
        probe = torch.zeros(1, contract.channels, size, size)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                feat = self.forward_global(probe)
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - user code: report, don't crash
            raise CheckpointError(
                f"{source}: running the module on a zero input of shape {tuple(probe.shape)} "
                f"failed ({type(e).__name__}: {e}). If it needs another input size or channel "
                f"count, pass an input contract (input_size=..., channels=...)."
            ) from e
        finally:
            module.train(was_training)
        self.feature_dim = int(feat.shape[1])

    def forward_global(self, x: Tensor) -> Tensor:
        return _as_feature(self.module(x), self.source)

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        raise ConfigError(
            f"encoder {self.source} ({self.arch}) has no feature pyramid: it only provides a "
            f"global feature, which is enough for classification (linear probing) but "
            f"segmentation and detection need a multi-scale feature pyramid. Use a "
            f"state-dict checkpoint of a registered architecture, or a `module:function` "
            f"factory returning an Encoder subclass that implements forward_pyramid."
        )


__all__ = ["ModuleEncoder"]
