"""The mmengine config of a segmentation unit, generated in Python from (task, encoder).

The config is plain data (JSON-serialisable); it is dumped into every result as
``hyperparameters["mmengine_config"]`` and :func:`build_segmentor` rebuilds the same model
from it (given the encoder spec can be loaded again). The model is an mmseg
``EncoderDecoder``: backbone ``FrozenEncoderBackbone`` (all five pyramid levels), decode head
``UNetDecodeHead``, loss ``FocalLogDiceLoss``; the optimiser is built from ``optim_wrapper``
with mmengine's builder; ``randomness.seed`` is the unit's seed. Training is the harness's
explicit loop (benchmark/families/segmentation.py); it reads its batch size, epoch cap and
early-stopping rule from ``train_loop``, so the stored config is what ran.
"""

from __future__ import annotations

import warnings

from mmengine.config import Config

from ..segmentation_spec import SegmentationTaskSpec


def segmentation_config(
    task: SegmentationTaskSpec,
    encoder_spec: str,
    pyramid_channels: tuple[int, ...],
    *,
    input_size: int,
    seed: int,
    load_kwargs: dict | None = None,
    bn_drift: bool = False,
    max_epochs: int | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
) -> dict:
    recipe = task.recipe
    levels = list(range(len(pyramid_channels)))
    model = dict(
        type="EncoderDecoder",
        data_preprocessor=dict(
            type="SegDataPreProcessor",
            mean=None,
            std=None,
            bgr_to_rgb=False,
            pad_val=0,
            seg_pad_val=255,
            size=(input_size, input_size),
        ),
        backbone=dict(
            type="FrozenEncoderBackbone",
            encoder=encoder_spec,
            out_indices=tuple(levels),
            load_kwargs=dict(load_kwargs or {}),
            bn_drift=bn_drift,
        ),
        decode_head=dict(
            type="UNetDecodeHead",
            in_channels=[int(c) for c in pyramid_channels],
            in_index=levels,
            decoder_channels=list(recipe.decoder_channels),
            num_classes=2,
            out_channels=1,
            threshold=recipe.threshold,
            dropout_ratio=0.0,
            norm_cfg=dict(type="BN", requires_grad=True),
            align_corners=False,
            loss_decode=dict(
                type="FocalLogDiceLoss",
                focal_weight=recipe.focal_weight,
                gamma=recipe.focal_gamma,
                smooth=recipe.dice_smooth,
                loss_weight=1.0,
            ),
        ),
        train_cfg=dict(),
        test_cfg=dict(mode="whole"),
    )
    aug = recipe.augmentation
    return dict(
        default_scope="mmseg",
        model=model,
        optim_wrapper=dict(
            type="OptimWrapper",
            optimizer=dict(type="AdamW", lr=recipe.lr, betas=list(recipe.betas), weight_decay=recipe.weight_decay),
        ),
        randomness=dict(seed=seed, deterministic=False),
        train_loop=dict(
            kind="medvlp-bench explicit epoch loop",
            batch_size=recipe.batch_size,
            max_epochs=max_epochs or recipe.max_epochs,
            early_stopping=dict(
                monitor="val_loss", rule="less", patience=patience or recipe.patience, min_delta=min_delta
            ),
            checkpoint="best val_loss (decoder state; whole model under bn_drift)",
            input_size=input_size,
            augmentation=dict(
                type="ShiftScaleRotate",
                shift_limit=aug.shift_limit,
                scale_limit=aug.scale_limit,
                rotate_limit=aug.rotate_limit,
                p=aug.p,
                border=aug.border,
            ),
        ),
    )


def build_segmentor(config: dict | Config, loaded=None):
    """Build the mmseg model of a (dumped) config. ``loaded``: the harness's encoder, handed to
    the backbone (:func:`~benchmark.openmmlab.frozen_backbone.with_encoder`); without it the
    backbone loads the encoder by the spec the config names."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from . import unet_decoder  # noqa: F401  (registration)
    from .frozen_backbone import with_encoder

    register_all_modules(init_default_scope=False)
    cfg = config if isinstance(config, Config) else Config(dict(config))
    with DefaultScope.overwrite_default_scope("mmseg"), warnings.catch_warnings():
        # mmseg 1.2's own BaseDecodeHead calls its deprecated build_loss; not ours to fix
        warnings.filterwarnings("ignore", message=".*build_loss.*would be deprecated", category=UserWarning)
        return MODELS.build(with_encoder(cfg.model.to_dict(), loaded) if loaded is not None else cfg.model)
