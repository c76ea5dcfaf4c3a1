"""CheXpert 5 competition labels, zero-shot (CheXzero prompt pairs) on the official test
images (valid.csv, frontal); thresholds for F1 / accuracy chosen on the validation split."""

from benchmark.datasets.chexpert import COMPETITION_TASKS
from benchmark.task_spec import ZeroShotTaskSpec

TASK = ZeroShotTaskSpec(
    id="chexpert_zeroshot",
    dataset="chexpert",
    title="CheXpert 5 competition labels, zero-shot classification (prompt pairs)",
    mode="classification",
    metric="auc",
    classes=COMPETITION_TASKS,
    label_columns=COMPETITION_TASKS,
    multilabel=True,
)
