"""How each dataset is split (shared by every task on that dataset).

Sizes are MGCA's published split table (train / val / test images):
CheXpert frontal 186,027 / 5,000 / 202 (official valid.csv), RSNA 16,010 / 5,337 / 5,337,
COVIDx 23,988 / 5,998 / 400 (official test list; val = 20% of the official train list),
SIIM-ACR 8,433 / 1,807 / 1,807 (from the official train-rle.csv), Object-CXR
6,400 / 1,600 / 1,000 (the official dev set is the test set).

CheXpert's validation images are drawn as whole patients (``val_groups``), so no patient
has images in both train and val; val is then not stratified by label (see
tasks/build_manifests.py for the sizes and prevalences this gives).

SIIM trains on a balanced set (``balance``), as MGCA and GLoRIA do: every positive train
image plus an equal number of negatives, and the 10% / 1% label fractions are taken from
that balanced set. Validation and test keep the natural mix.
"""

from benchmark.datasets.chexpert import COMPETITION_TASKS
from benchmark.splits import SplitRecipe

SPLIT_RECIPES: dict[str, SplitRecipe] = {
    "chexpert": SplitRecipe(val=5000, test=None, stratify=COMPETITION_TASKS, val_groups=True),
    "rsna": SplitRecipe(val=5337, test=5337, stratify=("Pneumonia",)),
    "covidx": SplitRecipe(val=0.2, test=None, stratify=("label",)),
    "siim": SplitRecipe(val=1807, test=1807, stratify=("Pneumothorax",), balance="Pneumothorax"),
    "object_cxr": SplitRecipe(val=1600, test=None, stratify=("has_object",)),
}
