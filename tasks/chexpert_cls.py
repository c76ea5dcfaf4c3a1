"""CheXpert 5-label linear probe (multi-label, macro AUC)."""

from benchmark.datasets.chexpert import COMPETITION_TASKS
from benchmark.task_spec import ClassificationTaskSpec, ImageRecipe, LinearProbeRecipe

TASK = ClassificationTaskSpec(
    id="chexpert_cls",
    dataset="chexpert",
    title="CheXpert 5 competition labels, frontal views (linear probe)",
    metric="auc",
    classes=COMPETITION_TASKS,
    label_columns=COMPETITION_TASKS,
    multilabel=True,
    image=ImageRecipe(train_augmentation="moco"),
    probe=LinearProbeRecipe(loss="bce"),
)
