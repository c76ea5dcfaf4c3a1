"""Linear-probe classification unit: cached frozen features -> linear head -> AUC / accuracy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch

from ..batched_probe import HeadData, train_linear_probes
from ..context import RunContext
from ..features import ViewDataset, ViewPlan, compute_in_memory
from ..linear_probe import predict, train_linear_probe
from ..metrics import classification_metrics
from ..preprocess import PreprocessSpec
from ..results import UnitId
from ..task_data import TaskData, limited, unit_train_ids
from ..task_spec import ClassificationTaskSpec
from ..unit_outcome import TrainingLog, UnitOutcome
from ..unit_plan import ClassificationPlan, classification_plan

TRAIN_VIEW_SEED = 0  # the cached augmented views are shared by every unit seed


def plan_of(task: ClassificationTaskSpec, ctx: RunContext) -> ClassificationPlan:
    """The unit's effective settings (benchmark/unit_plan.py): image sizes, the probe recipe with
    the suite's overrides (the demo's larger learning rate, see benchmark/suites.py) and the
    stopping rule's min_delta."""
    return classification_plan(task, ctx.suite, ctx.flags)


def preprocess_spec(task: ClassificationTaskSpec, ctx: RunContext) -> PreprocessSpec:
    plan = plan_of(task, ctx)
    return PreprocessSpec(resize=plan.resize, crop=plan.crop, train_augmentation=task.image.train_augmentation)


def encoder_upsample(task: ClassificationTaskSpec, ctx: RunContext, crop: int) -> float:
    """Fixed-size encoders (ViT) get their input size; CNNs get MGCA's 224 -> 299 factor."""
    size = ctx.encoder.contract.input_size
    return size / crop if size else task.image.cnn_upsample


def probe_recipe(task: ClassificationTaskSpec, ctx: RunContext):
    return plan_of(task, ctx).probe


def targets_of(task: ClassificationTaskSpec, records: pd.DataFrame) -> np.ndarray:
    values = records[list(task.label_columns)].to_numpy().copy()
    return values if (task.multilabel or task.num_outputs == 1) else values[:, 0]


def key_parts(ctx: RunContext, data: TaskData, unit: UnitId) -> dict:
    """What the unit key hashes beside the plan and the shared parts (benchmark/runner.py)."""
    from ..splits import ids_hash

    return {
        "train_ids": ids_hash(unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)),
        "preprocess": preprocess_spec(data.task, ctx).to_dict(),
        "exact": ctx.feature_cache is None,
    }


class SplitFeatures:
    """Cached (or exact-mode) features of one split of one task."""

    def __init__(self, ctx: RunContext, data: TaskData, split: str, spec: PreprocessSpec, upsample: float):
        self.ctx, self.data, self.split = ctx, data, split
        self.ids = limited(data.split_ids[split], ctx.limit)
        self.position = {image_id: k for k, image_id in enumerate(self.ids)}
        paths = data.records.loc[self.ids, "path"].tolist()
        train = split == "train"
        self.plan = ViewPlan(train=train, count=ctx.suite.train_views if train else 1, seed=TRAIN_VIEW_SEED)
        self.dataset = ViewDataset(paths, self.ids, spec, self.plan)
        self.spec, self.upsample = spec, upsample

    def key_parts(self) -> dict:
        from ..splits import ids_hash

        return {
            "encoder": self.ctx.encoder_identity(),
            "preprocess": self.spec.to_dict(),
            "upsample": self.upsample,
            "views": {"train": self.plan.train, "count": self.plan.count, "seed": self.plan.seed},
            "dataset": self.data.task.dataset,
            "manifest": self.data.manifest.sha256,
            "split": self.split,
            "ids": ids_hash(self.ids),
            "content": self.dataset.content_digest(),  # same ids, other image bytes: other features
        }

    def rows(self, ids: list[str]) -> list[int]:
        return [self.position[i] for i in ids]

    def _encode_kwargs(self, desc: str) -> dict:
        ctx = self.ctx
        return dict(
            device=ctx.device,
            batch_size=ctx.encode_batch_size,
            workers=ctx.workers,
            upsample=self.upsample,
            desc=desc,
            progress=ctx.progress,
        )

    def get(self, ids: list[str]) -> tuple[torch.Tensor, dict]:
        """(views, len(ids), D) float32 features of ``ids``, from the cache (filled as needed)."""
        rows = self.rows(ids)
        desc = f"{self.data.task.id} {self.split} features"
        if self.ctx.feature_cache is None:
            array = compute_in_memory(self.ctx.encoder, self.dataset, rows, **self._encode_kwargs(desc))
            return torch.from_numpy(array), {"computed": len(rows), "cached": 0}
        array, stats = self.ctx.feature_cache.features(
            self.key_parts(), self.ctx.encoder, self.dataset, rows, **self._encode_kwargs(desc)
        )
        return torch.from_numpy(np.ascontiguousarray(array[:, rows, :]).astype(np.float32)), stats

    def fresh_epoch(self, ids: list[str], epoch: int) -> torch.Tensor:
        """Exact mode: newly augmented views of ``ids`` for one epoch (the encoder runs again)."""
        plan = ViewPlan(train=True, count=1, seed=TRAIN_VIEW_SEED, epoch=epoch)
        dataset = ViewDataset(self.dataset.paths, self.ids, self.spec, plan)
        desc = f"{self.data.task.id} train features (epoch {epoch + 1}, exact mode)"
        return torch.from_numpy(
            compute_in_memory(self.ctx.encoder, dataset, self.rows(ids), **self._encode_kwargs(desc))
        )


@dataclass
class PreparedUnit:
    """A unit's features and targets, read before its probe trains."""

    unit: UnitId
    train_ids: list[str]
    test_ids: list[str]
    train_views: torch.Tensor | Callable[[int], torch.Tensor]  # (views, N, D), or per epoch (exact mode)
    y_train: torch.Tensor
    val_features: torch.Tensor
    y_val: torch.Tensor
    test_features: torch.Tensor
    y_test: np.ndarray
    cache_stats: dict
    timings: dict


def prepare_unit(ctx: RunContext, data: TaskData, unit: UnitId, shared: dict | None = None) -> PreparedUnit:
    """Read a unit's features (from the cache, filled as needed). ``shared`` (one dict per
    group of units) hands a split already read for another unit of the group, with the same
    ids, over instead of reading it again (recorded as ``reused_in_memory``)."""
    from ..splits import ids_hash

    task: ClassificationTaskSpec = data.task
    shared = {} if shared is None else shared
    spec = preprocess_spec(task, ctx)
    upsample = encoder_upsample(task, ctx, spec.crop)
    ctx.encoder.eval()
    train_ids = unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)
    splits = shared.setdefault("splits", {})
    for split in ("train", "val", "test"):
        splits.setdefault(split, SplitFeatures(ctx, data, split, spec, upsample))
    timings: dict[str, float] = {}
    cache_stats = {}
    read = {}
    for split, ids in (("train", train_ids), ("val", splits["val"].ids), ("test", splits["test"].ids)):
        t0 = time.perf_counter()
        key = (split, ids_hash(ids))
        if key in shared:
            read[split], stats = shared[key][0], {"computed": 0, "cached": len(ids), "reused_in_memory": True}
        else:
            read[split], stats = splits[split].get(ids)
            shared[key] = (read[split], stats)
        cache_stats[split] = stats
        timings[f"features_{split}"] = time.perf_counter() - t0
    records = data.records
    test_ids = splits["test"].ids
    train_views = read["train"]
    if ctx.feature_cache is None:
        train_static = read["train"]

        def train_views(epoch: int) -> torch.Tensor:
            return train_static if epoch == 0 else splits["train"].fresh_epoch(train_ids, epoch)

    return PreparedUnit(
        unit=unit,
        train_ids=train_ids,
        test_ids=test_ids,
        train_views=train_views,
        y_train=torch.as_tensor(targets_of(task, records.loc[train_ids])),
        val_features=read["val"][0],
        y_val=torch.as_tensor(targets_of(task, records.loc[splits["val"].ids])),
        test_features=read["test"][0],
        y_test=targets_of(task, records.loc[test_ids]),
        cache_stats=cache_stats,
        timings=timings,
    )


def batched(ctx: RunContext) -> bool:
    """Probes train batched (:mod:`benchmark.batched_probe`) unless ``--probe-batching off``
    or exact mode (fresh features every epoch)."""
    return ctx.probe_batching and ctx.feature_cache is not None


def group_key(ctx: RunContext, data: TaskData, unit: UnitId):
    """Units with one key train as one batch: same task (the runner adds it), same label
    fraction and training-set size. Without batching every unit is its own group."""
    if not batched(ctx):
        return unit
    return unit.fraction, len(unit_train_ids(data, unit.fraction, unit.seed, ctx.limit))


def train_probes(ctx: RunContext, data: TaskData, prepared: list[PreparedUnit]) -> list:
    """The probes of ``prepared`` (one group): batched, or one by one with the single-head
    trainer when batching is off."""
    task: ClassificationTaskSpec = data.task
    recipe = probe_recipe(task, ctx)
    min_delta = plan_of(task, ctx).min_delta
    if batched(ctx):
        heads = [HeadData(p.train_views, p.y_train, p.unit.seed) for p in prepared]
        first = prepared[0]
        seeds = ",".join(str(p.unit.seed) for p in prepared)
        return train_linear_probes(
            heads,
            first.val_features,
            first.y_val,
            task.num_outputs,
            recipe,
            device=ctx.device,
            progress=ctx.progress,
            desc=f"{task.id}_frac{first.unit.fraction} seeds {seeds} probes",
            min_delta=min_delta,
        )
    return [
        train_linear_probe(
            p.train_views,
            p.y_train,
            p.val_features,
            p.y_val,
            task.num_outputs,
            recipe,
            seed=p.unit.seed,
            device=ctx.device,
            progress=ctx.progress,
            desc=f"{p.unit.name} probe",
            min_delta=min_delta,
        )
        for p in prepared
    ]


def run_group(ctx: RunContext, data: TaskData, units: list[UnitId]) -> Iterator[tuple[UnitId, UnitOutcome]]:
    """Run the units of one group (:func:`group_key`): read their features, train their
    probes together, then finish and yield each unit (the runner writes each at once)."""
    started = time.perf_counter()
    shared: dict = {}
    prepared = [prepare_unit(ctx, data, unit, shared) for unit in units]
    del shared
    t0 = time.perf_counter()
    probes = train_probes(ctx, data, prepared)
    probe_seconds = time.perf_counter() - t0
    share = (time.perf_counter() - started) / len(units)
    record = {"batched": batched(ctx), "heads": len(units), "units": [u.name for u in units]}
    for p, probe in zip(prepared, probes):
        t0 = time.perf_counter()
        p.timings["probe"] = probe_seconds
        outcome = run_unit(ctx, data, p.unit, prepared=p, probe=probe, batching=record)
        outcome.timings["unit_total"] = share + time.perf_counter() - t0
        yield p.unit, outcome


def run_unit(
    ctx: RunContext,
    data: TaskData,
    unit: UnitId,
    *,
    prepared: PreparedUnit | None = None,
    probe=None,
    batching: dict | None = None,
) -> UnitOutcome:
    """One unit; ``prepared`` and ``probe`` when :func:`run_group` read and trained it."""
    task: ClassificationTaskSpec = data.task
    spec = preprocess_spec(task, ctx)
    upsample = encoder_upsample(task, ctx, spec.crop)
    if prepared is None:
        prepared = prepare_unit(ctx, data, unit)
    timings = prepared.timings
    if probe is None:
        t0 = time.perf_counter()
        probe = train_probes(ctx, data, [prepared])[0]
        timings["probe"] = time.perf_counter() - t0
        batching = {"batched": batched(ctx), "heads": 1, "units": [unit.name]}
    probabilities = predict(probe.head, prepared.test_features.to(ctx.device), task.probe.loss).cpu().numpy()

    y_test, test_ids, train_ids = prepared.y_test, prepared.test_ids, prepared.train_ids
    class_names = list(task.classes) if task.num_outputs > 1 else [task.classes[-1]]
    metrics = classification_metrics(y_test, probabilities, task.multilabel or task.num_outputs == 1, class_names)
    predictions = pd.DataFrame({"image_id": test_ids})
    targets_2d = y_test.reshape(len(y_test), -1)
    for k, column in enumerate(task.label_columns):
        predictions[f"target:{column}"] = targets_2d[:, k]
    for k, name in enumerate(class_names):
        predictions[f"prob:{name}"] = probabilities[:, k]

    from ..splits import ids_hash

    exact = ctx.feature_cache is None
    recipe = probe_recipe(task, ctx)
    return UnitOutcome(
        metrics=metrics,
        predictions=predictions,
        data={
            **data.describe(unit.fraction, unit.seed),
            "n_train": len(train_ids),
            "train_ids_sha256": ids_hash(train_ids),
            "n_test": len(test_ids),
        },
        hyperparameters={
            "probe": recipe.model_dump(mode="json"),
            "preprocess": spec.to_dict(),
            "encoder_input_scale": upsample,
            "train_views_cached": None if exact else ctx.suite.train_views,
            "seed": unit.seed,
            "train_view_seed": TRAIN_VIEW_SEED,
            "suite": ctx.suite.describe(),
        },
        training=TrainingLog(
            best_epoch=probe.best_epoch,
            epochs_run=probe.epochs_run,
            best_val_loss=probe.best_val_loss,
            history=probe.history,
            details={"feature_cache": prepared.cache_stats},
        ),
        timings=timings,
        flags={"exact_features": exact},
        # how the probe was trained (not part of the unit key: batched and single-head training
        # give the same numbers up to rounding; README "Batched probes")
        provenance={"probe_batching": batching},
    )
