"""RSNA Pneumonia: pneumonia vs normal linear probe (one logit, AUC)."""

from benchmark.task_spec import ClassificationTaskSpec, ImageRecipe, LinearProbeRecipe

TASK = ClassificationTaskSpec(
    id="rsna_cls",
    dataset="rsna",
    title="RSNA Pneumonia, pneumonia vs normal (linear probe)",
    metric="auc",
    classes=("normal", "pneumonia"),
    label_columns=("Pneumonia",),
    multilabel=False,
    image=ImageRecipe(train_augmentation="crop"),
    probe=LinearProbeRecipe(loss="bce"),
)
