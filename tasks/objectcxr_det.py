"""Object-CXR: foreign-object detection (YOLOv3 neck + head on the frozen encoder, mAP)."""

from benchmark.task_spec import DetectionRecipe, DetectionTaskSpec

TASK = DetectionTaskSpec(
    id="objectcxr_det",
    dataset="object_cxr",
    title="Object-CXR, foreign-object detection (YOLOv3 head)",
    classes=("foreign_object",),
    recipe=DetectionRecipe(lr_1pct=2.5e-4),
)
