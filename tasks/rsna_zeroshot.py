"""RSNA Pneumonia: pneumonia vs normal, zero-shot (CheXzero prompt pair) on the test split."""

from benchmark.task_spec import ZeroShotTaskSpec

TASK = ZeroShotTaskSpec(
    id="rsna_zeroshot",
    dataset="rsna",
    title="RSNA Pneumonia, pneumonia vs normal, zero-shot classification (prompt pair)",
    mode="classification",
    metric="auc",
    classes=("Pneumonia",),
    label_columns=("Pneumonia",),
)
