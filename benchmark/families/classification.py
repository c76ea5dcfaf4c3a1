"""Linear-probe classification unit: cached frozen features -> linear head -> AUC / accuracy."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from ..context import RunContext
from ..features import ViewDataset, ViewPlan, compute_in_memory
from ..linear_probe import predict, train_linear_probe
from ..metrics import classification_metrics
from ..preprocess import PreprocessSpec
from ..results import Result, UnitId
from ..task_data import TaskData, limited, unit_train_ids
from ..task_spec import ClassificationTaskSpec

TRAIN_VIEW_SEED = 0  # the cached augmented views are shared by every unit seed


def preprocess_spec(task: ClassificationTaskSpec, ctx: RunContext) -> PreprocessSpec:
    return PreprocessSpec(
        resize=ctx.suite.resize or task.image.resize,
        crop=ctx.suite.crop or task.image.crop,
        train_augmentation=task.image.train_augmentation,
    )


def encoder_upsample(task: ClassificationTaskSpec, ctx: RunContext, crop: int) -> float:
    """Fixed-size encoders (ViT) get their input size; CNNs get MGCA's 224 -> 299 factor."""
    size = ctx.encoder.contract.input_size
    return size / crop if size else task.image.cnn_upsample


def probe_recipe(task: ClassificationTaskSpec, ctx: RunContext):
    """The task's probe recipe with a suite's overrides (``Suite.extra['probe_recipe']``: the
    demo suite's larger learning rate, so its tiny training sets converge within the epoch
    cap; see benchmark/suites.py). The paper suite uses the recipe unchanged."""
    overrides = (ctx.suite.extra or {}).get("probe_recipe")
    return task.probe.model_copy(update=dict(overrides)) if overrides else task.probe


def targets_of(task: ClassificationTaskSpec, records: pd.DataFrame) -> np.ndarray:
    values = records[list(task.label_columns)].to_numpy().copy()
    return values if (task.multilabel or task.num_outputs == 1) else values[:, 0]




def unit_key(ctx: RunContext, data: TaskData, unit: UnitId, spec: PreprocessSpec, train_ids_hash: str) -> str:
    return ctx.unit_key(data, unit, train_ids=train_ids_hash, preprocess=spec.to_dict(), exact=ctx.feature_cache is None)




def expected_unit_key(ctx: RunContext, data: TaskData, unit: UnitId) -> str:
    from ..splits import ids_hash

    spec = preprocess_spec(data.task, ctx)
    return unit_key(ctx, data, unit, spec, ids_hash(unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)))


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
        return dict(device=ctx.device, batch_size=ctx.encode_batch_size, workers=ctx.workers, upsample=self.upsample, desc=desc, progress=ctx.progress)

    def get(self, ids: list[str]) -> tuple[torch.Tensor, dict]:
        """(views, len(ids), D) float32 features of ``ids``, from the cache (filled as needed)."""
        rows = self.rows(ids)
        desc = f"{self.data.task.id} {self.split} features"
        if self.ctx.feature_cache is None:
            array = compute_in_memory(self.ctx.encoder, self.dataset, rows, **self._encode_kwargs(desc))
            return torch.from_numpy(array), {"computed": len(rows), "cached": 0}
        array, stats = self.ctx.feature_cache.features(self.key_parts(), self.ctx.encoder, self.dataset, rows, **self._encode_kwargs(desc))
        return torch.from_numpy(np.ascontiguousarray(array[:, rows, :]).astype(np.float32)), stats

    def fresh_epoch(self, ids: list[str], epoch: int) -> torch.Tensor:
        """Exact mode: newly augmented views of ``ids`` for one epoch (the encoder runs again)."""
        plan = ViewPlan(train=True, count=1, seed=TRAIN_VIEW_SEED, epoch=epoch)
        dataset = ViewDataset(self.dataset.paths, self.ids, self.spec, plan)
        desc = f"{self.data.task.id} train features (epoch {epoch + 1}, exact mode)"
        return torch.from_numpy(compute_in_memory(self.ctx.encoder, dataset, self.rows(ids), **self._encode_kwargs(desc)))


def run_unit(ctx: RunContext, data: TaskData, unit: UnitId) -> tuple[Result, pd.DataFrame]:
    task: ClassificationTaskSpec = data.task
    timings: dict[str, float] = {}
    spec = preprocess_spec(task, ctx)
    upsample = encoder_upsample(task, ctx, spec.crop)
    ctx.encoder.eval()

    train_ids = unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)
    splits = {s: SplitFeatures(ctx, data, s, spec, upsample) for s in ("train", "val", "test")}
    records = data.records
    cache_stats = {}
    t0 = time.perf_counter()
    train_static, cache_stats["train"] = splits["train"].get(train_ids)
    timings["features_train"] = time.perf_counter() - t0
    features = {}
    for split in ("val", "test"):
        t0 = time.perf_counter()
        views, cache_stats[split] = splits[split].get(splits[split].ids)
        features[split] = views[0]
        timings[f"features_{split}"] = time.perf_counter() - t0

    y_train = torch.as_tensor(targets_of(task, records.loc[train_ids]))
    y_val = torch.as_tensor(targets_of(task, records.loc[splits["val"].ids]))
    test_ids = splits["test"].ids
    y_test = targets_of(task, records.loc[test_ids])

    exact = ctx.feature_cache is None
    train_views = train_static
    if exact:
        def train_views(epoch: int) -> torch.Tensor:
            return train_static if epoch == 0 else splits["train"].fresh_epoch(train_ids, epoch)

    t0 = time.perf_counter()
    recipe = probe_recipe(task, ctx)
    probe = train_linear_probe(
        train_views, y_train, features["val"], y_val, task.num_outputs, recipe,
        seed=unit.seed, device=ctx.device, progress=ctx.progress, desc=f"{unit.name} probe",
        min_delta=float((ctx.suite.extra or {}).get("probe_min_delta") or 0.0),
    )
    timings["probe"] = time.perf_counter() - t0
    probabilities = predict(probe.head, features["test"].to(ctx.device), task.probe.loss).cpu().numpy()

    class_names = list(task.classes) if task.num_outputs > 1 else [task.classes[-1]]
    metrics = classification_metrics(y_test, probabilities, task.multilabel or task.num_outputs == 1, class_names)
    predictions = pd.DataFrame({"image_id": test_ids})
    targets_2d = y_test.reshape(len(y_test), -1)
    for k, column in enumerate(task.label_columns):
        predictions[f"target:{column}"] = targets_2d[:, k]
    for k, name in enumerate(class_names):
        predictions[f"prob:{name}"] = probabilities[:, k]

    from ..splits import ids_hash

    result = Result(
        **ctx.result_header(task, unit),
        value=float(metrics[task.metric]),
        metrics=metrics,
        data={**data.describe(unit.fraction, unit.seed), "n_train": len(train_ids), "train_ids_sha256": ids_hash(train_ids), "n_test": len(test_ids)},
        hyperparameters={
            "probe": recipe.model_dump(mode="json"),
            "preprocess": spec.to_dict(),
            "encoder_input_scale": upsample,
            "train_views_cached": None if exact else ctx.suite.train_views,
            "seed": unit.seed,
            "train_view_seed": TRAIN_VIEW_SEED,
            "suite": ctx.suite.describe(),
        },
        training={
            "best_epoch": probe.best_epoch,
            "epochs_run": probe.epochs_run,
            "best_val_loss": probe.best_val_loss,
            "history": probe.history,
            "feature_cache": cache_stats,
        },
        timings=timings,
        flags={**ctx.flags, "exact_features": exact, **({"limit": ctx.limit} if ctx.limit is not None else {})},
        unit_key=unit_key(ctx, data, unit, spec, ids_hash(train_ids)),
    )
    return result, predictions
