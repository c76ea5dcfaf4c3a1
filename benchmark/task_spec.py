"""Declarative task definitions (one small file per task in ``tasks/``).

A task is data: which dataset, which labels, which head and training recipe, which metric.
Specs are pydantic models with ``extra="forbid"`` and closed vocabularies, so a typo in a
task file fails loudly when the registry loads it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Family = Literal["classification", "segmentation", "detection", "zeroshot"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class LinearProbeRecipe(Spec):
    """docs/protocol.md: AdamW lr 5e-4, betas (0.9, 0.999), weight decay 1e-6, batch 48, at most
    50 epochs, early stopping on validation loss with patience 10, test with the best head."""

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-6
    batch_size: int = 48
    max_epochs: int = 50
    patience: int = 10
    loss: Literal["bce", "cross_entropy"]


class ImageRecipe(Spec):
    """Pixels the encoder sees: resize longer side + pad to ``resize``, crop to ``crop``."""

    resize: int = 256
    crop: int = 224
    train_augmentation: Literal["crop", "moco"] = "crop"
    # MGCA's ResNet linear probe upsamples the 224 crop to 299 (bilinear, align_corners=True)
    # before conv1; expressed as a factor so the demo suite's smaller crops scale the same way.
    cnn_upsample: float = 299 / 224


class TaskSpec(Spec):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    family: Family
    dataset: Literal["chexpert", "rsna", "covidx", "siim", "object_cxr"]
    title: str
    metric: Literal["auc", "accuracy", "dice", "map"]
    fractions: tuple[int, ...] = (1, 10, 100)
    reference: str = "MGCA (Wang et al., NeurIPS 2022) downstream protocol"


class ClassificationTaskSpec(TaskSpec):
    family: Literal["classification"] = "classification"
    classes: tuple[str, ...]
    label_columns: tuple[str, ...]  # record columns holding the targets
    multilabel: bool  # True: one sigmoid per class (BCE); False: softmax over classes
    secondary_metrics: tuple[Literal["auc", "accuracy"], ...] = ()
    image: ImageRecipe = ImageRecipe()
    probe: LinearProbeRecipe

    @property
    def num_outputs(self) -> int:
        # binary single-label tasks (RSNA) use one logit with BCE, as MGCA does
        return 1 if (not self.multilabel and len(self.classes) == 2 and self.probe.loss == "bce") else len(self.classes)


# ------------------------------------------------------------------ detection
COCO_YOLOV3_ANCHORS = (  # mmdet/darknet YOLOv3 anchors at 416 input, per level (strides 32, 16, 8)
    ((116, 90), (156, 198), (373, 326)),
    ((30, 61), (62, 45), (59, 119)),
    ((10, 13), (16, 30), (33, 23)),
)


class DetectionRecipe(Spec):
    """docs/protocol.md: YOLOv3 neck + head on the pyramid levels at strides 8/16/32 (a
    ResNet's layer2/3/4) at 224 input (image stretched to the square, boxes scaled the same
    way), COCO anchors scaled by input/416; the reference's (MGCA's) YOLOv3 target assignment, loss and objectness-only
    score (``yolo="reference"``; mmdet's stock head with ``"mmdet"``); AdamW wd 1e-6; 1% ->
    ``lr_1pct`` with batch 8, 10%/100% -> lr 5e-4 with batch 16; at most 50 epochs, early
    stopping on val mAP (patience 10); objectness >= 0.5 and NMS IoU 0.5 at test; mAP over
    IoU 0.40:0.05:0.75."""

    lr_1pct: float
    lr: float = 5e-4
    batch_size_1pct: int = 8
    batch_size: int = 16
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-6
    max_epochs: int = 50
    patience: int = 10
    input_size: int = 224  # the square the image becomes (see ``geometry``); no crop
    geometry: Literal["stretch", "letterbox"] = (
        "stretch"  # reference: stretched (linear); letterbox: longer side + zero pad
    )
    yolo: Literal["reference", "mmdet"] = (
        "reference"  # target assignment, loss and score: MGCA's, or mmdet's stock YOLOv3
    )
    # the pyramid levels the neck takes, numbered by stride: level i is the level at stride 2 ** (i + 1)
    # (a ResNet's stem = 0 ... layer4 = 4, whence the name), so (2, 3, 4) = strides 8, 16, 32 whatever
    # the encoder's level count (benchmark/families/detection.py level_indices; docs/protocol.md)
    out_indices: tuple[int, int, int] = (2, 3, 4)
    anchors: tuple[tuple[tuple[int, int], ...], ...] = COCO_YOLOV3_ANCHORS
    anchor_reference_size: int = 416
    neck_out_channels: tuple[int, int, int] = (512, 256, 128)
    head_out_channels: tuple[int, int, int] = (1024, 512, 256)
    objectness_threshold: float = 0.5
    nms_iou: float = 0.5
    max_per_image: int = 100
    iou_thresholds: tuple[float, ...] = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)

    @field_validator("out_indices")
    @classmethod
    def _levels_shallow_to_deep(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(i < 0 for i in value) or list(value) != sorted(set(value)):
            raise ValueError(f"out_indices must be distinct non-negative levels, shallow to deep, got {value}")
        return value

    @property
    def level_strides(self) -> tuple[int, ...]:
        """Strides of the pyramid levels the neck takes, shallow to deep: (8, 16, 32) by default."""
        return tuple(2 ** (i + 1) for i in self.out_indices)

    def lr_for(self, fraction: int) -> float:
        return self.lr_1pct if fraction <= 1 else self.lr

    def batch_size_for(self, fraction: int) -> int:
        return self.batch_size_1pct if fraction <= 1 else self.batch_size


class DetectionTaskSpec(TaskSpec):
    family: Literal["detection"] = "detection"
    metric: Literal["map"] = "map"
    box_column: str = "boxes"  # record column: list of (x, y, w, h) in image pixels
    classes: tuple[str, ...]
    recipe: DetectionRecipe


# ------------------------------------------------------------------ zero-shot
class ZeroShotTaskSpec(TaskSpec):
    """Zero-shot scoring of a vision-language checkpoint (image + text towers, no training).

    ``mode="classification"``: per class, CheXzero-style softmax over the cosine similarities of
    the image embedding with the class's positive and negative prompt embeddings; macro AUC, and
    F1 / accuracy at a per-class threshold chosen on the validation split.
    ``mode="grounding"``: on positive images, the cosine similarity of the projected positive
    prompt with every location of the image's local feature map, upsampled to the image; Dice and
    IoU at a threshold chosen on validation positives, and the pointing game.
    ``prompts`` names a versioned prompt set in ``benchmark/data/prompts/<prompts>.json``.
    Zero-shot units have no label fraction: only 100 (the grid's seed is irrelevant; use 0).
    """

    family: Literal["zeroshot"] = "zeroshot"
    mode: Literal["classification", "grounding"]
    metric: Literal["auc", "dice"]
    fractions: tuple[int, ...] = (100,)
    classes: tuple[str, ...]  # prompt-set class keys, one per label column
    label_columns: tuple[str, ...]
    multilabel: bool = False
    prompts: str = "chexzero_pairs-v1"
    image: ImageRecipe = ImageRecipe()
    mask_source: Literal["rle", "boxes"] | None = None  # grounding: SIIM RLE union / RSNA filled boxes
    threshold_grid: int = 99  # grounding: thresholds 0.01..0.99 on per-image min-max normalised maps

    @property
    def num_outputs(self) -> int:
        return len(self.classes)
