"""Task spec of the segmentation family (frozen encoder + U-Net decoder, Dice).

docs/protocol.md: U-Net decoder (channels 256, 128, 64, 32, 16, batch norm) over the frozen
encoder's stages, one output channel, 224 input (image and mask stretched to the square);
train augmentation shift-scale-rotate (shift 0, scale 0.1, rotate 10 degrees, p 0.5,
constant zero border: the reference's albumentations call); loss 10 x focal (gamma 2) - log(soft Dice); AdamW
lr 5e-4, weight decay 0.05, batch 8 (SIIM) / 16 (RSNA), at most 50 epochs, early stopping on
validation loss with patience 10, test with the best checkpoint; Dice at sigmoid > 0.5.
"""

from __future__ import annotations

from typing import Literal

from .task_spec import Spec, TaskSpec


class ShiftScaleRotate(Spec):
    """albumentations-style ShiftScaleRotate with the reference's arguments
    (``ShiftScaleRotate(shift_limit=0, scale_limit=0.1, rotate_limit=10, p=0.5,
    border_mode=cv2.BORDER_CONSTANT)`` in MGCA's segmentation dataset). albumentations' own
    defaults, which protocol v1 used, are shift 0.0625 and a reflected border."""

    shift_limit: float = 0.0
    scale_limit: float = 0.1
    rotate_limit: float = 10.0  # degrees
    p: float = 0.5
    border: Literal["reflect_101", "constant"] = "constant"  # zero fill (image and mask)


class SegmentationRecipe(Spec):
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.05
    batch_size: int
    max_epochs: int = 50
    patience: int = 10
    input_size: int = 224  # the square image and mask become (the demo suite uses a smaller one)
    geometry: Literal["stretch", "letterbox"] = (
        "stretch"  # reference: stretched (linear); letterbox: longer side + zero pad
    )
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    focal_weight: float = 10.0
    focal_gamma: float = 2.0
    dice_smooth: float = 1.0
    threshold: float = 0.5
    augmentation: ShiftScaleRotate = ShiftScaleRotate()


class SegmentationTaskSpec(TaskSpec):
    family: Literal["segmentation"] = "segmentation"
    metric: Literal["dice"] = "dice"
    label_column: str  # image-level 0/1 label (positive = non-empty mask); stratifies the splits
    mask_source: Literal["rle", "boxes"]  # SIIM: union of RLE rows; RSNA: union of filled boxes
    recipe: SegmentationRecipe

    # the classification-style view of the image-level label (split checks iterate every task)
    @property
    def label_columns(self) -> tuple[str, ...]:
        return (self.label_column,)

    @property
    def multilabel(self) -> bool:
        return False

    @property
    def num_outputs(self) -> int:
        return 1
