"""Declarative task definitions (one small file per task in ``tasks/``).

A task is data: which dataset, which labels, which head and training recipe, which metric.
Specs are pydantic models with ``extra="forbid"`` and closed vocabularies, so a typo in a
task file fails loudly when the registry loads it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Family = Literal["classification", "segmentation", "detection", "zeroshot"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class LinearProbeRecipe(Spec):
    """PROTOCOL.md: AdamW lr 5e-4, betas (0.9, 0.999), weight decay 1e-6, batch 48, at most
    50 epochs, early stopping on validation loss with patience 10, test with the best head."""

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-6
    batch_size: int = 48
    max_epochs: int = 50
    patience: int = 10
    loss: Literal["bce", "cross_entropy"]


class ImageRecipe(Spec):
    """Pixels the encoder sees: resize longer side + pad to ``resize``, crop to ``crop``."""

    resize: int = 256
    crop: int = 224
    train_augmentation: Literal["crop", "moco"] = "crop"
    # MGCA's ResNet linear probe upsamples the 224 crop to 299 (bilinear, align_corners=True)
    # before conv1; expressed as a factor so the demo suite's smaller crops scale the same way.
    cnn_upsample: float = 299 / 224


class TaskSpec(Spec):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    family: Family
    dataset: Literal["chexpert", "rsna", "covidx", "siim", "object_cxr"]
    title: str
    metric: Literal["auc", "accuracy", "dice", "map"]
    fractions: tuple[int, ...] = (1, 10, 100)
    reference: str = "MGCA (Wang et al., NeurIPS 2022) downstream protocol"


class ClassificationTaskSpec(TaskSpec):
    family: Literal["classification"] = "classification"
    classes: tuple[str, ...]
    label_columns: tuple[str, ...]  # record columns holding the targets
    multilabel: bool  # True: one sigmoid per class (BCE); False: softmax over classes
    secondary_metrics: tuple[Literal["auc", "accuracy"], ...] = ()
    image: ImageRecipe = ImageRecipe()
    probe: LinearProbeRecipe

    @property
    def num_outputs(self) -> int:
        # binary single-label tasks (RSNA) use one logit with BCE, as MGCA does
        return 1 if (not self.multilabel and len(self.classes) == 2 and self.probe.loss == "bce") else len(self.classes)
