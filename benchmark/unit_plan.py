"""A unit's effective settings, resolved once: (task, suite, flags) -> a typed plan per family.

Where a family's settings come from:

- the task's recipe (``tasks/<task>.py``: the reference protocol),
- the suite's overrides (:class:`SuiteOverrides`, the typed form of ``Suite.extra``; the demo
  suite's smaller heads, learning rates and stopping rules, see benchmark/suites.py),
- the user's recorded switches (``ctx.flags``: ``--geometry``, ``--yolo-semantics``,
  ``--mgca-bn-drift``, ``--zeroshot-threshold-on-test``).

Families read their plan and nothing else: no family looks at ``Suite.extra`` or the flags
itself, so one suite cannot mean different things to different families. ``Suite.extra``
keeps its plain-JSON form because results record it (and unit keys hash it); an unknown key
in it is refused instead of silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import ConfigError

THRESHOLD_FLAG = "zeroshot_threshold_on_test"  # --zeroshot-threshold-on-test, recorded in ctx.flags


class SuiteOverrides(BaseModel):
    """What a suite changes in the tasks' recipes (``Suite.extra``), typed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probe_recipe: dict[str, Any] = {}  # fields of the task's ProbeRecipe
    probe_min_delta: float = 0.0  # relative validation-loss improvement that resets the probe's patience
    segmentation_recipe: dict[str, Any] = {}  # fields of the task's SegmentationRecipe
    segmentation_patience: int | None = None
    segmentation_min_delta: float = 0.0
    segmentation_input_size: int | None = None
    segmentation_max_epochs: int | None = None
    detection_recipe: dict[str, Any] = {}  # fields of the task's DetectionRecipe
    detection_min_delta: float = 0.0  # relative val-loss improvement that resets the patience while the val mAP ties


def suite_overrides(suite) -> SuiteOverrides:
    try:
        return SuiteOverrides.model_validate(suite.extra or {})
    except Exception as error:  # pydantic's message names the key
        raise ConfigError(f"suite {suite.name!r}: its recipe overrides (Suite.extra) are not valid: {error}") from None


# ------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class ClassificationPlan:
    resize: int
    crop: int
    probe: Any  # the effective ProbeRecipe
    min_delta: float


@dataclass(frozen=True)
class SegmentationPlan:
    task: Any  # the SegmentationTaskSpec with its effective recipe
    input_size: int
    max_epochs: int
    patience: int
    min_delta: float
    bn_drift: bool
    epochs_capped: bool  # a debugging cap below the recipe's epochs is in force (flagged in results)


@dataclass(frozen=True)
class DetectionPlan:
    recipe: Any  # the effective DetectionRecipe
    input_size: int
    loss_min_delta: float
    bn_drift: bool


@dataclass(frozen=True)
class ZeroShotPlan:
    resize: int
    crop: int
    threshold_split: str  # "val" (the protocol) or "test" (--zeroshot-threshold-on-test)


def plan_fingerprint(plan) -> dict[str, Any]:
    """A plan as plain JSON values (pydantic recipes and task specs dumped, tuples as lists): what
    the runner hashes into every unit key (benchmark/runner.py ``unit_key``)."""

    def plain(value):
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return {"plan": type(plan).__name__, **plain(plan)}


def bn_drift(flags: dict) -> bool:
    """MGCA compatibility (``--mgca-bn-drift``): the frozen encoder's batch-norm statistics drift
    while a segmentation or detection head trains (the reference code's behaviour)."""
    return bool(flags.get("mgca_bn_drift"))


def _with(recipe, overrides: dict):
    """``recipe`` with ``overrides`` validated (an override may be plain JSON, e.g. a dict)."""
    return type(recipe).model_validate({**recipe.model_dump(), **overrides}) if overrides else recipe


def classification_plan(task, suite, flags: dict) -> ClassificationPlan:
    over = suite_overrides(suite)
    return ClassificationPlan(
        resize=int(suite.resize or task.image.resize),
        crop=int(suite.crop or task.image.crop),
        probe=task.probe.model_copy(update=dict(over.probe_recipe)) if over.probe_recipe else task.probe,
        min_delta=float(over.probe_min_delta or 0.0),
    )


def segmentation_plan(task, suite, flags: dict, epoch_cap: int | None = None) -> SegmentationPlan:
    """``epoch_cap``: ``--seg-max-epochs`` (debugging; the result records it as ``max_epochs_capped``)."""
    over = suite_overrides(suite)
    changes = dict(over.segmentation_recipe)
    if flags.get("dense_geometry"):  # the user's recorded switch (--geometry letterbox)
        changes["geometry"] = flags["dense_geometry"]
    effective = task.model_copy(update={"recipe": _with(task.recipe, changes)}) if changes else task
    cap = epoch_cap or over.segmentation_max_epochs
    max_epochs = int(min(effective.recipe.max_epochs, cap)) if cap else int(effective.recipe.max_epochs)
    return SegmentationPlan(
        task=effective,
        input_size=int(over.segmentation_input_size or suite.crop or effective.recipe.input_size),
        max_epochs=max_epochs,
        patience=int(over.segmentation_patience or effective.recipe.patience),
        min_delta=float(over.segmentation_min_delta or 0.0),
        bn_drift=bn_drift(flags),
        epochs_capped=max_epochs < effective.recipe.max_epochs,
    )


def detection_plan(task, suite, flags: dict) -> DetectionPlan:
    over = suite_overrides(suite)
    changes = dict(over.detection_recipe)
    if flags.get("yolo_semantics"):
        changes["yolo"] = flags["yolo_semantics"]
    if flags.get("dense_geometry"):
        changes["geometry"] = flags["dense_geometry"]
    return DetectionPlan(
        recipe=task.recipe.model_copy(update=changes),
        input_size=int(suite.resize or task.recipe.input_size),
        loss_min_delta=float(over.detection_min_delta or 0.0),
        bn_drift=bn_drift(flags),
    )


def zeroshot_plan(task, suite, flags: dict) -> ZeroShotPlan:
    return ZeroShotPlan(
        resize=int(suite.resize or task.image.resize),
        crop=int(suite.crop or task.image.crop),
        threshold_split="test" if flags.get(THRESHOLD_FLAG) else "val",
    )
