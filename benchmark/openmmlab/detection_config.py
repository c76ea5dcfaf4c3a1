"""mmdetection 3.x config for the detection family, generated in Python from (task, encoder).

YOLOv3 (``YOLOV3`` + ``YOLOV3Neck`` + a YOLOv3 head, one class) on the shared
:class:`~benchmark.openmmlab.frozen_backbone.FrozenEncoderBackbone` (the levels at strides
8/16/32: a ResNet's layer2/3/4). COCO YOLOv3 anchors are scaled by input/416. Test-time
post-processing: objectness >= 0.5 (``conf_thr``), NMS IoU 0.5.

The head follows the recipe's ``yolo`` switch:

- ``"reference"`` (default): :class:`~benchmark.openmmlab.reference_yolo_head.ReferenceYOLOV3Head`,
  registered in mmdet's registry by this package: MGCA's per-level target assignment, its
  per-level mean losses (x/y and w/h weight 2.5, no-object weight 0.5) and the objectness
  alone as a box's score. It has no ``train_cfg``: there is no mmdet assigner to configure.
- ``"mmdet"``: mmdet's stock ``YOLOV3Head`` (``GridAssigner`` over all levels, summed losses
  with weights 2 / 1, score = objectness x class probability).

Training is the harness's explicit epoch loop (benchmark/families/detection.py), not mmengine's
runner; it reads everything it uses from the config: ``optimizer`` (AdamW on the neck and
head), ``train_loop`` (batch size, epoch cap, early stopping) and ``randomness.seed``, so the
config a result stores is exactly what ran.

Nothing is patched in the installed mmdet: the model is built from its registry with
``_scope_="mmdet"``, so it builds whatever the process's default scope is (mmseg too).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..task_spec import DetectionRecipe

if TYPE_CHECKING:
    from mmengine.config import Config


REFERENCE_HEAD = "MedVLPReferenceYOLOV3Head"  # the registry name of reference_yolo_head.ReferenceYOLOV3Head


def scaled_anchors(recipe: DetectionRecipe, input_size: int) -> list[list[tuple[float, float]]]:
    factor = input_size / recipe.anchor_reference_size
    return [[(round(w * factor, 4), round(h * factor, 4)) for w, h in level] for level in recipe.anchors]


def head_config(recipe: DetectionRecipe, *, num_classes: int, input_size: int, strides_deep_first: list) -> dict:
    """The ``bbox_head`` section for the recipe's ``yolo`` switch (module docstring)."""
    common = dict(
        num_classes=num_classes,
        in_channels=list(recipe.neck_out_channels),
        out_channels=list(recipe.head_out_channels),
        anchor_generator=dict(
            type="YOLOAnchorGenerator", base_sizes=scaled_anchors(recipe, input_size), strides=strides_deep_first
        ),
        bbox_coder=dict(type="YOLOBBoxCoder"),
        featmap_strides=strides_deep_first,
    )
    if recipe.yolo == "reference":
        return dict(type=REFERENCE_HEAD, xy_weight=2.5, wh_weight=2.5, noobj_weight=0.5, ignore_thr=0.5, **common)
    return dict(
        type="YOLOV3Head",
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0, reduction="sum"),
        loss_conf=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0, reduction="sum"),
        loss_xy=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=2.0, reduction="sum"),
        loss_wh=dict(type="MSELoss", loss_weight=2.0, reduction="sum"),
        **common,
    )


def detection_model_config(
    recipe: DetectionRecipe,
    *,
    encoder_spec: str,
    in_channels: tuple[int, int, int],
    strides: tuple[int, int, int],
    input_size: int,
    num_classes: int = 1,
    load_kwargs: dict | None = None,
    bn_drift: bool = False,
    out_indices: tuple[int, ...] | None = None,
) -> dict:
    """The ``model`` section. ``in_channels`` / ``strides``: of the backbone levels, shallow to deep.
    ``out_indices``: their positions in the encoder's pyramid (``detection.level_indices``);
    default the recipe's stride-numbered levels, which are a ResNet's positions."""
    deep_first = list(reversed(in_channels))
    strides_deep_first = list(reversed(strides))
    return dict(
        _scope_="mmdet",
        type="YOLOV3",
        # images arrive as 0-255 grey replicated to 3 channels; the backbone wants [0, 1] grey
        data_preprocessor=dict(
            type="DetDataPreprocessor",
            mean=[0.0, 0.0, 0.0],
            std=[255.0, 255.0, 255.0],
            bgr_to_rgb=False,
            pad_size_divisor=32,
        ),
        backbone=dict(
            type="FrozenEncoderBackbone",
            encoder=encoder_spec,
            out_indices=tuple(recipe.out_indices if out_indices is None else out_indices),
            load_kwargs=load_kwargs or {},
            bn_drift=bn_drift,
        ),
        neck=dict(type="YOLOV3Neck", num_scales=3, in_channels=deep_first, out_channels=list(recipe.neck_out_channels)),
        bbox_head=head_config(
            recipe, num_classes=num_classes, input_size=input_size, strides_deep_first=strides_deep_first
        ),
        train_cfg=(
            dict(assigner=dict(type="GridAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0))
            if recipe.yolo == "mmdet"
            else None
        ),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.0,
            conf_thr=recipe.objectness_threshold,
            nms=dict(type="nms", iou_threshold=recipe.nms_iou),
            max_per_img=recipe.max_per_image,
        ),
    )


def detection_config(
    recipe: DetectionRecipe, *, fraction: int, seed: int, loss_min_delta: float = 0.0, **model_kwargs
) -> "Config":
    """The whole resolved config of a unit (model, optimiser, training loop, seed) as an
    mmengine ``Config``; the training loop reads its settings from it."""
    from mmengine.config import Config

    return Config(
        dict(
            default_scope="mmdet",
            model=detection_model_config(recipe, **model_kwargs),
            optimizer=dict(
                type="AdamW",
                params="neck and bbox_head (the backbone is frozen)",
                lr=recipe.lr_for(fraction),
                betas=tuple(recipe.betas),
                weight_decay=recipe.weight_decay,
            ),
            train_loop=dict(
                kind="medvlp-bench explicit epoch loop",
                batch_size=recipe.batch_size_for(fraction),
                max_epochs=recipe.max_epochs,
                early_stopping=dict(
                    monitor="val map (all validation images: the sound rule)",
                    rule="greater",
                    patience=recipe.patience,
                    tie_break="lower val loss",
                    loss_min_delta=loss_min_delta,
                ),
                checkpoint="best (val map, -val loss): neck and head state",
            ),
            randomness=dict(seed=seed, deterministic=False),
        )
    )


def build_detector(model_cfg: dict, loaded=None):
    """Build the mmdet model (importing mmdet's modules; the default scope is left alone).
    ``loaded``: the harness's encoder, handed to the backbone
    (:func:`~benchmark.openmmlab.frozen_backbone.with_encoder`); without it the backbone loads
    the encoder by the spec the config names."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from . import reference_yolo_head  # noqa: F401  (registers the reference head)
    from .frozen_backbone import with_encoder

    register_all_modules(init_default_scope=False)
    return MODELS.build(with_encoder(model_cfg, loaded) if loaded is not None else copy.deepcopy(model_cfg))
