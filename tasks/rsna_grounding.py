"""RSNA Pneumonia zero-shot grounding: the 'pneumonia' prompt against the local feature map of
each positive test image; mask = union of the filled boxes; Dice / IoU / pointing game."""

from benchmark.task_spec import ZeroShotTaskSpec

TASK = ZeroShotTaskSpec(
    id="rsna_grounding",
    dataset="rsna",
    title="RSNA Pneumonia, zero-shot grounding of 'pneumonia' (box masks)",
    mode="grounding",
    metric="dice",
    classes=("Pneumonia",),
    label_columns=("Pneumonia",),
    mask_source="boxes",
)
