"""One registered backbone for mmseg and mmdet: any harness encoder, frozen.

Config: ``dict(type="FrozenEncoderBackbone", encoder="random:resnet50", out_indices=(2, 3, 4),
load_kwargs={...})``. The encoder is loaded with :func:`models.loading.load_encoder` (so
every backbone tensor must load, or the load is refused) and memoised per process, so the
harness and the OpenMMLab model share one instance. Frozen means ``requires_grad=False``
on every parameter AND eval mode forever: ``train()`` never switches the encoder to training
mode, so batch-norm running statistics cannot drift (MGCA's code let them drift; the
``bn_drift`` switch reproduces that for comparison and is recorded in results).

``forward`` takes the mm-style normalised batch (the data preprocessor is configured as
identity scaling: inputs arrive in [0, 1] grey-replicated) and returns the encoder pyramid
levels selected by ``out_indices``.
"""

from __future__ import annotations

import json

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS

_LOADED: dict[str, object] = {}


def cached_encoder(spec: str, load_kwargs: dict | None = None):
    """Load (once per process) the encoder named by ``spec`` with ``load_kwargs``."""
    from models.loading import load_encoder

    key = json.dumps([spec, load_kwargs or {}], sort_keys=True)
    if key not in _LOADED:
        _LOADED[key] = load_encoder(spec, **(load_kwargs or {}))
    return _LOADED[key]


def register_loaded(spec: str, load_kwargs: dict | None, loaded) -> None:
    """Share an encoder the harness already loaded with configs that name ``spec``."""
    _LOADED[json.dumps([spec, load_kwargs or {}], sort_keys=True)] = loaded


@MODELS.register_module(force=True)
class FrozenEncoderBackbone(BaseModule):
    def __init__(self, encoder: str, out_indices=(2, 3, 4), load_kwargs: dict | None = None,
                 bn_drift: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        loaded = cached_encoder(encoder, load_kwargs)
        self.encoder = loaded.encoder
        self.out_indices = tuple(out_indices)
        self.bn_drift = bn_drift
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        self.encoder.eval()
        channels = self.encoder.pyramid_channels
        self.out_channels = tuple(channels[i] for i in self.out_indices)
        self.out_strides = tuple(self.encoder.pyramid_strides[i] for i in self.out_indices)

    def init_weights(self):  # the encoder's weights come from its checkpoint, never re-initialised
        pass

    def train(self, mode: bool = True):
        super().train(mode)
        if self.bn_drift and mode:  # MGCA compatibility: batch-norm statistics keep updating
            self.encoder.unfreeze() if hasattr(self.encoder, "unfreeze") else None
            self.encoder.train(True)
            for parameter in self.encoder.parameters():
                parameter.requires_grad_(False)
        else:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.encoder.prepare(x[:, :1]) if x.shape[1] in (1, 3) else x
        with torch.set_grad_enabled(self.bn_drift and self.training):
            levels = self.encoder.forward_pyramid(x)
        return tuple(levels[i] for i in self.out_indices)
