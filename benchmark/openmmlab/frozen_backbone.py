"""One registered backbone for mmseg and mmdet: any harness encoder, frozen.

Config: ``dict(type="FrozenEncoderBackbone", encoder="random:resnet50", out_indices=(2, 3, 4),
load_kwargs={...})``. The harness hands its already loaded encoder object to the model when it
builds it (:func:`with_encoder`: the object goes into a private copy of the model config, never
into the config a result stores), so harness and model share one instance. The spec string is
only for rebuilding a model from a dumped config: then the encoder is loaded anew with
:func:`models.loading.load_encoder` (every backbone tensor must load, or the load is refused).
Frozen means ``requires_grad=False``
on every parameter AND eval mode forever: ``train()`` never switches the encoder to training
mode, so batch-norm running statistics cannot drift (MGCA's code let them drift; the
``bn_drift`` switch reproduces that for comparison and is recorded in results).

``forward`` takes the mm-style normalised batch (the data preprocessor is configured as
identity scaling: inputs arrive in [0, 1] grey-replicated) and returns the encoder pyramid
levels selected by ``out_indices``: positions in the encoder's pyramid (segmentation: all
levels; detection: the levels at strides 8/16/32, found by stride in
``benchmark/families/detection.py`` ``level_indices``, so (2, 3, 4) of a ResNet's five levels
and (1, 2, 3) of a ViT's four).
"""

from __future__ import annotations

import copy

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS


def with_encoder(model_cfg, loaded) -> dict:
    """A private copy of a model config whose backbone receives ``loaded`` (the harness's
    :class:`~models.loading.LoadedEncoder`, or an :class:`~models.encoder.Encoder`) as an
    object. The config a result stores stays plain data naming the encoder's spec."""
    model_cfg = dict(copy.deepcopy(model_cfg))
    model_cfg["backbone"] = {**model_cfg["backbone"], "loaded": loaded}
    return model_cfg


@MODELS.register_module(force=True)
class FrozenEncoderBackbone(BaseModule):
    def __init__(
        self,
        encoder: str,
        out_indices=(2, 3, 4),
        load_kwargs: dict | None = None,
        bn_drift: bool = False,
        init_cfg=None,
        loaded=None,
    ):
        super().__init__(init_cfg=init_cfg)
        if loaded is None:  # rebuilding a model from a dumped config: load the encoder by its spec
            from models.loading import load_encoder

            loaded = load_encoder(encoder, **(load_kwargs or {}))
        self.encoder = getattr(loaded, "encoder", loaded)
        self.out_indices = tuple(out_indices)
        self.bn_drift = bn_drift
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        self.encoder.eval()
        channels = self.encoder.pyramid_channels
        if any(not 0 <= i < len(channels) for i in self.out_indices):
            raise ValueError(
                f"FrozenEncoderBackbone: out_indices {list(self.out_indices)} are positions in the encoder's pyramid, "
                f"but {getattr(self.encoder, 'arch', 'the encoder')} has {len(channels)} levels (strides "
                f"{list(self.encoder.pyramid_strides)}); detection picks them by stride (detection.level_indices)"
            )
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
