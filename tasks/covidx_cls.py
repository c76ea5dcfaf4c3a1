"""COVIDx 3-class linear probe: normal / pneumonia / COVID-19 (accuracy)."""

from benchmark.datasets.covidx import CLASSES
from benchmark.task_spec import ClassificationTaskSpec, ImageRecipe, LinearProbeRecipe

TASK = ClassificationTaskSpec(
    id="covidx_cls",
    dataset="covidx",
    title="COVIDx normal / pneumonia / COVID-19 (linear probe)",
    metric="accuracy",
    secondary_metrics=("auc",),
    classes=CLASSES,
    label_columns=("label",),
    multilabel=False,
    image=ImageRecipe(train_augmentation="crop"),
    probe=LinearProbeRecipe(loss="cross_entropy"),
)
