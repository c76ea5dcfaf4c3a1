"""How each dataset is split (shared by every task on that dataset).

Sizes are MGCA's published split table (train / val / test images):
CheXpert frontal 186,027 / 5,000 / 202 (official valid.csv), RSNA 16,010 / 5,337 / 5,337,
COVIDx 23,988 / 5,998 / 400 (official test list; val = 20% of the official train list).
"""

from benchmark.datasets.chexpert import COMPETITION_TASKS
from benchmark.splits import SplitRecipe

SPLIT_RECIPES: dict[str, SplitRecipe] = {
    "chexpert": SplitRecipe(val=5000, test=None, stratify=COMPETITION_TASKS),
    "rsna": SplitRecipe(val=5337, test=5337, stratify=("Pneumonia",)),
    "covidx": SplitRecipe(val=0.2, test=None, stratify=("label",)),
    "siim": SplitRecipe(val=1807, test=1807, stratify=("Pneumothorax",)),  # [seg] 8,433 / 1,807 / 1,807 from train-rle.csv
    "object_cxr": SplitRecipe(val=1600, test=None, stratify=("has_object",)),  # 6,400 / 1,600 / official dev 1,000
}
