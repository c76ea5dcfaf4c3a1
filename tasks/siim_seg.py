"""SIIM-ACR pneumothorax segmentation: U-Net decoder on the frozen encoder (Dice)."""

from benchmark.segmentation_spec import SegmentationRecipe, SegmentationTaskSpec

TASK = SegmentationTaskSpec(
    id="siim_seg",
    dataset="siim",
    title="SIIM-ACR pneumothorax segmentation (frozen encoder + U-Net decoder)",
    label_column="Pneumothorax",
    mask_source="rle",
    recipe=SegmentationRecipe(batch_size=8),
)
