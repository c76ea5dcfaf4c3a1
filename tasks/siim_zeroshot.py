"""SIIM-ACR: pneumothorax vs none, zero-shot (CheXzero prompt pair) on the test split."""

from benchmark.task_spec import ZeroShotTaskSpec

TASK = ZeroShotTaskSpec(
    id="siim_zeroshot",
    dataset="siim",
    title="SIIM-ACR, pneumothorax vs none, zero-shot classification (prompt pair)",
    mode="classification",
    metric="auc",
    classes=("Pneumothorax",),
    label_columns=("Pneumothorax",),
)
