"""U-Net decoder head and the protocol's segmentation loss, registered in mmseg's MODELS.

``UNetDecodeHead`` is a :class:`mmseg.models.decode_heads.decode_head.BaseDecodeHead` over
the encoder pyramid ``[stride 2, 4, 8, 16, 32]`` (all five levels of a ResNet, from
``FrozenEncoderBackbone(out_indices=(0, 1, 2, 3, 4))``): starting from the deepest level,
each decoder block upsamples (nearest) to the next shallower level's size, concatenates it,
and applies two 3x3 conv-BN-ReLU; blocks beyond the available skips upsample by 2 with no
skip. With decoder channels (256, 128, 64, 32, 16) on a ResNet this is the usual U-Net
decoder (as in segmentation_models_pytorch's ``Unet``, which MGCA used), ending at stride 1;
a 3x3 conv gives the single output channel (sigmoid), and mmseg resizes logits to the input.

``FocalLogDiceLoss``: ``focal_weight * focal(gamma) - log(soft Dice)`` on the one logit
channel. mmseg's ``FocalLoss`` applies an alpha class weight (0.5 on both classes by
default) and its ``DiceLoss`` is ``1 - Dice``, so neither term is the protocol's; this small
loss is. Focal: mean over pixels of ``(1 - p_t) ** gamma * BCE``; soft Dice over the batch:
``(2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)`` with ``smooth = 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module(force=True)
class FocalLogDiceLoss(nn.Module):
    def __init__(
        self,
        focal_weight: float = 10.0,
        gamma: float = 2.0,
        smooth: float = 1.0,
        loss_weight: float = 1.0,
        loss_name: str = "loss_seg",
    ):
        super().__init__()
        self.focal_weight, self.gamma, self.smooth, self.loss_weight = focal_weight, gamma, smooth, loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, weight=None, ignore_index: int = 255, **kwargs
    ) -> torch.Tensor:
        logits = pred.float()[:, 0] if pred.dim() == 4 else pred.float()
        valid = (target != ignore_index).float()
        t = (target == 1).float()
        bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
        # (1 - p_t) ** gamma, computed stably as exp(gamma * logsigmoid(-z)) with z = logit * (2t - 1)
        modulator = torch.exp(self.gamma * F.logsigmoid(-logits * (2 * t - 1)))
        focal = (modulator * bce * valid).sum() / valid.sum().clamp_min(1)
        p = torch.sigmoid(logits) * valid
        dice = (2 * (p * t).sum() + self.smooth) / (p.sum() + (t * valid).sum() + self.smooth)
        return self.loss_weight * (self.focal_weight * focal - torch.log(dice))


@MODELS.register_module(force=True)
class UNetDecodeHead(BaseDecodeHead):
    def __init__(self, decoder_channels=(256, 128, 64, 32, 16), **kwargs):
        decoder_channels = tuple(decoder_channels)
        kwargs.setdefault("input_transform", "multiple_select")
        super().__init__(channels=decoder_channels[-1], **kwargs)
        self.decoder_channels = decoder_channels
        levels = list(self.in_channels)  # shallow -> deep
        skips = levels[-2::-1]  # deep -> shallow, without the deepest level
        blocks, previous = [], levels[-1]
        for i, out in enumerate(decoder_channels):
            skip = skips[i] if i < len(skips) else 0
            blocks.append(
                nn.Sequential(
                    ConvModule(
                        previous + skip,
                        out,
                        3,
                        padding=1,
                        conv_cfg=self.conv_cfg,
                        norm_cfg=self.norm_cfg,
                        act_cfg=self.act_cfg,
                    ),
                    ConvModule(
                        out, out, 3, padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg
                    ),
                )
            )
            previous = out
        self.blocks = nn.ModuleList(blocks)
        # 3x3 output conv (segmentation_models_pytorch's head), replacing the base 1x1
        self.conv_seg = nn.Conv2d(self.channels, self.out_channels, kernel_size=3, padding=1)

    def forward(self, inputs):
        levels = self._transform_inputs(inputs)
        skips = levels[-2::-1]
        x = levels[-1]
        for i, block in enumerate(self.blocks):
            if i < len(skips):
                x = F.interpolate(x, size=skips[i].shape[-2:], mode="nearest")
                x = torch.cat([x, skips[i].to(x.dtype)], dim=1)
            else:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(x)
        return self.cls_seg(x)
