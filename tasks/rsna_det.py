"""RSNA Pneumonia: pneumonia-opacity detection (YOLOv3 neck + head on the frozen encoder, mAP)."""

from benchmark.task_spec import DetectionRecipe, DetectionTaskSpec

TASK = DetectionTaskSpec(
    id="rsna_det",
    dataset="rsna",
    title="RSNA Pneumonia, opacity detection (YOLOv3 head)",
    classes=("opacity",),
    recipe=DetectionRecipe(lr_1pct=2e-4),
)
