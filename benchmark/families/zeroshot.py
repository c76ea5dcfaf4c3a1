"""Zero-shot unit: a vision-language checkpoint's image and text towers, no training.

``mode="classification"`` (chexpert_zeroshot, rsna_zeroshot, siim_zeroshot): the test images'
global embeddings against each class's positive / negative prompt embeddings (CheXzero pair
softmax); macro AUC (headline), F1 and accuracy at per-class thresholds chosen on the
validation split. ``mode="grounding"`` (rsna_grounding, siim_grounding): the positive test
images' local embedding maps against the class's positive prompt, upsampled to the image
(resized + zero-padded to the task's crop size, as segmentation does) and compared with the
ground-truth mask: Dice (headline) and IoU at a threshold chosen on validation positives,
and the pointing game. Details: :mod:`benchmark.zeroshot`.

Units: fraction 100 only; the seed does not change anything (there is no training) and the
submission check expects seed 0. Encoders without a text side (random:, imagenet:,
torchvision / image-only checkpoints) are NOT APPLICABLE: :func:`drop_inapplicable` removes
the zero-shot tasks before planning with a printed note and no result files, and
``validate-submission`` requires zero-shot units only from submissions that have some.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ..context import RunContext
from ..errors import BenchmarkError
from ..features import ViewDataset, ViewPlan
from ..metrics import classification_metrics
from ..preprocess import PreprocessSpec
from ..results import UnitId
from ..splits import ids_hash
from ..task_data import TaskData
from ..task_spec import ZeroShotTaskSpec
from ..unit_outcome import TrainingLog, UnitOutcome
from ..unit_plan import ZeroShotPlan, zeroshot_plan
from ..zeroshot import scoring
from ..zeroshot.prompts import load_prompt_set
from ..zeroshot.text_side import NotApplicable, applicability, load_vision_language


def drop_inapplicable(tasks: list, loaded, log=print) -> list:
    """``tasks`` without the zero-shot ones when ``loaded`` has no text side (with a note)."""
    zs = [t for t in tasks if t.family == "zeroshot"]
    if not zs:
        return tasks
    reason = applicability(loaded)
    if reason is None:
        return tasks
    log(
        f"NOTE: zero-shot tasks not applicable ({', '.join(t.id for t in zs)}): {reason}. "
        "They are skipped (no result files); zero-shot needs a checkpoint with a text encoder and projection heads."
    )
    return [t for t in tasks if t.family != "zeroshot"]


def limited(ids: list[str], limit: int | None) -> list[str]:
    return ids if limit is None else ids[:limit]


def _vl(ctx: RunContext):
    try:
        return load_vision_language(ctx.loaded, ctx.text_encoder, ctx.device)
    except NotApplicable as error:
        raise BenchmarkError(f"{error}. Leave the zero-shot tasks out (--tasks) for image-only encoders.") from None


def image_size(task: ZeroShotTaskSpec, ctx: RunContext) -> tuple[int, int]:
    plan = zeroshot_plan(task, ctx.suite, ctx.flags)
    return plan.resize, plan.crop


def threshold_split(task: ZeroShotTaskSpec, ctx: RunContext) -> str:
    return zeroshot_plan(task, ctx.suite, ctx.flags).threshold_split


def plan_of(task: ZeroShotTaskSpec, ctx: RunContext) -> ZeroShotPlan:
    """The unit's effective settings (benchmark/unit_plan.py): image sizes and the split that
    picks the thresholds."""
    return zeroshot_plan(task, ctx.suite, ctx.flags)


def key_parts(ctx: RunContext, data: TaskData, unit: UnitId) -> dict:
    """What the unit key hashes beside the plan and the shared parts (benchmark/runner.py): the
    text side (not its folder's path) and the prompts."""
    text = {k: v for k, v in _vl(ctx).describe().items() if k != "tokenizer_dir"}
    return {"text_side": text, "prompts": load_prompt_set(data.task.prompts).describe()}


def _prepared(ctx: RunContext, grey01: torch.Tensor) -> torch.Tensor:
    return ctx.encoder.prepare(grey01.to(ctx.device))


def _global_embeddings(ctx: RunContext, data: TaskData, vl, ids: list[str], spec: PreprocessSpec) -> torch.Tensor:
    paths = data.records.loc[ids, "path"].tolist()
    dataset = ViewDataset(paths, ids, spec, ViewPlan(train=False))
    loader = DataLoader(dataset, batch_size=ctx.encode_batch_size, num_workers=ctx.workers)
    out = []
    for _, views in loader:
        glob, _ = vl.image_embeddings(ctx.encoder, _prepared(ctx, views[:, 0]))
        out.append(glob.float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 1)


def _outcome(ctx, data, vl, prompts, metrics, predictions, timings, extra_h, n, training) -> UnitOutcome:
    task: ZeroShotTaskSpec = data.task
    return UnitOutcome(
        metrics=metrics,
        predictions=predictions,
        data={
            **{k: v for k, v in data.describe(100, 0).items() if k not in ("n_train_positive", "n_train_negative")},
            "n_train": 0,
            "train_composition": "none (zero-shot: no training)",
            "train_ids_sha256": ids_hash([]),
            **n,
        },
        hyperparameters={
            "mode": task.mode,
            "prompts": prompts.describe(),
            "threshold_split": threshold_split(task, ctx),
            "suite": ctx.suite.describe(),
            **extra_h,
        },
        training=TrainingLog(best_epoch=None, epochs_run=0, details={"zero_shot": True, **training}),
        timings=timings,
        encoder={"text_side": vl.describe()},
    )


def run_unit(ctx: RunContext, data: TaskData, unit: UnitId) -> UnitOutcome:
    task: ZeroShotTaskSpec = data.task
    if unit.fraction != 100:
        raise BenchmarkError(f"{task.id}: zero-shot tasks have no label fraction; use --fractions 100")
    vl = _vl(ctx)
    prompts = load_prompt_set(task.prompts)
    ctx.encoder.eval()
    if task.mode == "classification":
        return _classification(ctx, data, unit, vl, prompts)
    return _grounding(ctx, data, unit, vl, prompts)


# ---------------------------------------------------------------------------- classification
def _classification(ctx, data, unit, vl, prompts):
    task: ZeroShotTaskSpec = data.task
    timings = {}
    t0 = time.perf_counter()
    pairs = [prompts.pair(c) for c in task.classes]
    positive = torch.stack([vl.prompt_embedding(p) for p, _ in pairs]).cpu()
    negative = torch.stack([vl.prompt_embedding(n) for _, n in pairs]).cpu()
    timings["text"] = time.perf_counter() - t0
    resize, crop = image_size(task, ctx)
    spec = PreprocessSpec(resize=resize, crop=crop)
    split_of = threshold_split(task, ctx)
    ids = {s: limited(data.split_ids[s], ctx.limit) for s in ("val", "test")}
    probs, targets = {}, {}
    for split in ("val", "test") if split_of == "val" else ("test",):
        t0 = time.perf_counter()
        probs[split] = scoring.pair_probabilities(
            _global_embeddings(ctx, data, vl, ids[split], spec), positive, negative
        )
        targets[split] = data.records.loc[ids[split], list(task.label_columns)].to_numpy().astype(int)
        timings[f"images_{split}"] = time.perf_counter() - t0
    thresholds = np.array(
        [scoring.best_f1_threshold(targets[split_of][:, c], probs[split_of][:, c]) for c in range(len(task.classes))]
    )
    names = list(task.classes)
    metrics = classification_metrics(targets["test"], probs["test"], True, names)
    metrics.update(scoring.threshold_metrics(targets["test"], probs["test"], thresholds, names))
    metrics["threshold_split"] = split_of
    predictions = pd.DataFrame({"image_id": ids["test"]})
    for k, column in enumerate(task.label_columns):
        predictions[f"target:{column}"] = targets["test"][:, k]
    for k, name in enumerate(names):
        predictions[f"prob:{name}"] = probs["test"][:, k]
    n = {
        "n_val": len(ids["val"]) if split_of == "val" else 0,
        "n_test": len(ids["test"]),
        "test_ids_sha256": ids_hash(ids["test"]),
    }
    return _outcome(
        ctx,
        data,
        vl,
        prompts,
        metrics,
        predictions,
        timings,
        {"preprocess": spec.to_dict(), "score": "softmax over (positive, negative) cosine similarities"},
        n,
        {"thresholds": dict(zip(names, thresholds.tolist()))},
    )


# ---------------------------------------------------------------------------- grounding
def _grounding_counts(ctx, data, vl, ids, prompt: torch.Tensor, size: int, grid: np.ndarray) -> list[dict]:
    from .segmentation import load_images

    images, masks = load_images(ctx, data, ids, size, "letterbox")  # zero-shot grounding keeps its letterbox
    counts = []
    batch = max(1, ctx.encode_batch_size)
    for start in range(0, len(ids), batch):
        grey = torch.from_numpy(np.ascontiguousarray(images[start : start + batch])).float().div_(255.0).unsqueeze(1)
        _, local = vl.image_embeddings(ctx.encoder, _prepared(ctx, grey), want_local=True)
        sim = torch.einsum("bdhw,d->bhw", local.float(), prompt.to(local.device).float()).unsqueeze(1)
        sim = (
            torch.nn.functional.interpolate(sim, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
            .cpu()
            .numpy()
        )
        counts += [scoring.map_counts(s, m, grid) for s, m in zip(sim, masks[start : start + batch])]
    return counts


def _grounding(ctx, data, unit, vl, prompts):
    task: ZeroShotTaskSpec = data.task
    if task.mask_source is None:
        raise BenchmarkError(f"{task.id}: a grounding task needs mask_source")
    column, name = task.label_columns[0], task.classes[0]
    timings = {}
    prompt = vl.prompt_embedding(prompts.pair(name)[0], local=True)
    _, size = image_size(task, ctx)
    grid = scoring.threshold_grid(task.threshold_grid)
    split_of = threshold_split(task, ctx)
    records = data.records
    positives = {
        s: [i for i in limited(data.split_ids[s], ctx.limit) if int(records.loc[i, column]) == 1]
        for s in ("val", "test")
    }
    counts = {}
    for split in ("val", "test") if split_of == "val" else ("test",):
        t0 = time.perf_counter()
        counts[split] = _grounding_counts(ctx, data, vl, positives[split], prompt, size, grid)
        timings[f"images_{split}"] = time.perf_counter() - t0
    threshold, k = scoring.choose_map_threshold(counts[split_of], grid)
    test = counts["test"]
    inter = np.array([c["inter"][k] for c in test], dtype=np.int64)
    pred = np.array([c["pred"][k] for c in test], dtype=np.int64)
    true = np.array([c["true"] for c in test], dtype=np.int64)
    hits = np.array([c["hit"] for c in test], dtype=bool)
    dice, iou = scoring.dice_iou(inter, pred, true)
    metrics = {
        "dice": float(dice.mean()) if len(dice) else float("nan"),
        "iou": float(iou.mean()) if len(iou) else float("nan"),
        "pointing_game": float(hits.mean()) if len(hits) else float("nan"),
        "threshold": threshold,
        "threshold_split": split_of,
        "n_images": int(len(test)),
    }
    if split_of == "val" and not counts["val"]:
        metrics["threshold_note"] = "no validation positives: default threshold 0.5"
    predictions = pd.DataFrame(
        {
            "image_id": positives["test"],
            "intersection": inter,
            "pred_pixels": pred,
            "true_pixels": true,
            "dice": dice,
            "iou": iou,
            "pointing_hit": hits.astype(int),
        }
    )
    n = {
        "n_val": len(positives["val"]) if split_of == "val" else 0,
        "n_test": len(positives["test"]),
        "test_ids_sha256": ids_hash(positives["test"]),
        "images": "positive images only",
    }
    return _outcome(
        ctx,
        data,
        vl,
        prompts,
        metrics,
        predictions,
        timings,
        {
            "input_size": size,
            "map": "cosine(prompt, local embedding) upsampled bilinearly, min-max per image",
            "threshold_grid": task.threshold_grid,
            "mask_source": task.mask_source,
        },
        n,
        {"threshold": threshold},
    )


# ---------------------------------------------------------------------------- statistics
