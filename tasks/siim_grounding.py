"""SIIM-ACR zero-shot grounding: the 'pneumothorax' prompt against the local feature map of
each positive test image; mask = union of the image's RLE rows; Dice / IoU / pointing game."""

from benchmark.task_spec import ZeroShotTaskSpec

TASK = ZeroShotTaskSpec(
    id="siim_grounding",
    dataset="siim",
    title="SIIM-ACR, zero-shot grounding of 'pneumothorax' (RLE masks)",
    mode="grounding",
    metric="dice",
    classes=("Pneumothorax",),
    label_columns=("Pneumothorax",),
    mask_source="rle",
)
