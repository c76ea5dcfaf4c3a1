"""RSNA Pneumonia segmentation: mask = union of the filled boxes (Dice); same split as rsna_cls."""

from benchmark.segmentation_spec import SegmentationRecipe, SegmentationTaskSpec

TASK = SegmentationTaskSpec(
    id="rsna_seg",
    dataset="rsna",
    title="RSNA Pneumonia segmentation, box masks (frozen encoder + U-Net decoder)",
    label_column="Pneumonia",
    mask_source="boxes",
    recipe=SegmentationRecipe(batch_size=16),
)
