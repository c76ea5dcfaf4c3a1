"""Segmentation unit: frozen encoder + U-Net decoder (mmseg EncoderDecoder) -> Dice.

Per unit (task, fraction, seed):

1. Images and masks of the unit's train / val / test images are decoded once and made the
   input square (224; the demo suite uses a smaller one) as the recipe's ``geometry`` says:
   ``"stretch"`` (default, the reference's linear resize, aspect not kept) or ``"letterbox"``
   (protocol v1: longer side, area interpolation, zero-padded). Masks: SIIM = union of the
   image's RLE rows, RSNA = union of its filled boxes; resized to the same square (area
   interpolation when stretched, as the reference resizes its masks) and thresholded at 0.5.
   Decoded images are kept in memory for the process, so the three fractions of a task
   decode once.
2. The mmengine config is generated from (task, encoder) (:mod:`..openmmlab.segmentation_config`),
   the model is built by mmseg's registry; the backbone is the harness's loaded encoder.
3. Training is an explicit epoch loop around the mm model: ``model.loss`` on augmented
   training batches (the reference's shift-scale-rotate: shift 0, scale 0.1, rotate 10
   degrees, p 0.5, zero border; seeded per unit, epoch and image), AdamW from the
   config's ``optim_wrapper``, bf16 autocast on CUDA.
4. SPEED: the encoder is frozen and in eval mode, so the pyramid features of the val and
   test images cannot change during training. They are computed ONCE (fp16; in memory, or on
   disk under ``<cache>/pyramids`` when large, where later units and reruns reuse them) and
   every validation epoch and the test pass run only the decoder on them. Training images
   are augmented differently every epoch, so the encoder runs on them every epoch (that is
   the protocol; ``bench/segmentation_speed.py`` measures the split of time).
   Under ``--mgca-bn-drift`` batch-norm statistics change while training, so nothing is cached.
5. Early stopping on the validation loss (same loss as training, batches of the training
   batch size), patience 10; the best decoder is tested. Metrics: :mod:`..seg_metrics`.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
import json
import math
import os
import time

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..context import RunContext
from ..early_stopping import Patience
from ..features import autocast_context, content_digest, file_lock
from ..images import read_grey
from ..masks import boxes_mask, record_mask  # noqa: F401  (boxes_mask: re-exported for tests)
from ..preprocess import fit_square
from ..resident import fits, rows_to_device
from ..results import UnitId
from ..seg_metrics import mask_counts, segmentation_metrics
from ..segmentation_spec import SegmentationTaskSpec, ShiftScaleRotate
from ..splits import ids_hash
from ..task_data import TaskData, limited, unit_train_ids
from ..unit_outcome import TrainingLog, UnitOutcome
from ..unit_plan import SegmentationPlan, segmentation_plan

REQUIRES = ("mmengine", "mmcv", "mmseg")  # checked by benchmark.families.family_module
PYRAMID_VERSION = 1
MEMORY_BUDGET = float(os.environ.get("MEDVLP_SEG_MEMORY_GB", "4")) * 2**30  # larger val/test pyramids go to disk


# ---------------------------------------------------------------------------- settings
def plan_of(task: SegmentationTaskSpec, ctx: RunContext) -> SegmentationPlan:
    """The unit's effective settings (benchmark/unit_plan.py): the task with the suite's recipe
    overrides, input size, epoch cap, patience, min_delta, batch-norm drift."""
    return segmentation_plan(task, ctx.suite, ctx.flags, epoch_cap=ctx.seg_epoch_cap)


def key_parts(ctx: RunContext, data: TaskData, unit: UnitId) -> dict:
    """What the unit key hashes beside the plan and the shared parts (benchmark/runner.py)."""
    return {"train_ids": ids_hash(unit_train_ids(data, unit.fraction, unit.seed, ctx.limit))}


# ---------------------------------------------------------------------------- images and masks
def full_mask(task: SegmentationTaskSpec, record: pd.Series, height: int, width: int) -> np.ndarray:
    return record_mask(task.mask_source, record, height, width)


class _Decode(Dataset):
    def __init__(self, task, records: pd.DataFrame, size: int, geometry: str):
        self.task, self.records, self.size, self.geometry = task, records, size, geometry

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        record = self.records.iloc[index]
        grey = read_grey(record["path"])
        mask = full_mask(self.task, record, *grey.shape[:2])
        image = fit_square(grey, self.size, self.geometry)
        small = (
            fit_square(mask.astype(np.float32), self.size, self.geometry, stretch_interpolation=cv2.INTER_AREA) >= 0.5
        )
        return index, torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(small)


_DECODED: dict[tuple, dict[str, tuple[np.ndarray, np.ndarray]]] = {}


def load_images(
    ctx: RunContext, data: TaskData, ids: list[str], size: int, geometry: str
) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S) uint8 images and (N, S, S) bool masks of ``ids`` (decoded once per process)."""
    key = (str(data.adapter.folder), data.task.mask_source, size, geometry)
    for other in [k for k in _DECODED if k != key]:  # keep one dataset/size at a time
        del _DECODED[other]
    store = _DECODED.setdefault(key, {})
    todo = [i for i in dict.fromkeys(ids) if i not in store]
    if todo:
        dataset = _Decode(data.task, data.records.loc[todo], size, geometry)
        loader = DataLoader(dataset, batch_size=16, num_workers=ctx.workers)
        with tqdm(
            total=len(todo), desc=f"{data.task.id} decode", unit="img", leave=False, disable=not ctx.progress
        ) as bar:
            for index, images, masks in loader:
                for k, i in enumerate(index.tolist()):
                    store[todo[i]] = (images[k].numpy(), masks[k].numpy())
                bar.update(len(index))
    images = np.stack([store[i][0] for i in ids]) if ids else np.zeros((0, size, size), np.uint8)
    masks = np.stack([store[i][1] for i in ids]) if ids else np.zeros((0, size, size), bool)
    return images, masks


def shift_scale_rotate(image: np.ndarray, mask: np.ndarray, aug: ShiftScaleRotate, rng: np.random.Generator):
    """albumentations-style ShiftScaleRotate: with probability p, rotate by U(-r, r) degrees,
    scale by 1 + U(-s, s), shift by U(-t, t) of the size; image bilinear, mask nearest."""
    if rng.uniform() >= aug.p:
        return image, mask
    height, width = image.shape
    angle = rng.uniform(-aug.rotate_limit, aug.rotate_limit)
    scale = 1.0 + rng.uniform(-aug.scale_limit, aug.scale_limit)
    dx, dy = rng.uniform(-aug.shift_limit, aug.shift_limit, size=2)
    matrix = cv2.getRotationMatrix2D((width / 2 - 0.5, height / 2 - 0.5), angle, scale)
    matrix[0, 2] += dx * width
    matrix[1, 2] += dy * height
    border = cv2.BORDER_REFLECT_101 if aug.border == "reflect_101" else cv2.BORDER_CONSTANT
    image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    mask = cv2.warpAffine(
        mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST, borderMode=border, borderValue=0
    )
    return image, mask.astype(bool)


def image_seed(seed: int, epoch: int, image_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"seg\x00{seed}\x00{epoch}\x00{image_id}".encode()).digest()[:8], "big") >> 1


def to_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (B, S, S) -> float (B, 1, S, S) in [0, 1] (the backbone wrapper normalises)."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255.0).unsqueeze(1)


def data_samples(masks: np.ndarray, device: torch.device) -> list:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    size = tuple(masks.shape[-2:])
    tensor = torch.from_numpy(np.ascontiguousarray(masks)).to(device).long()
    return [
        SegDataSample(gt_sem_seg=PixelData(data=tensor[k : k + 1]), metainfo=dict(img_shape=size, ori_shape=size))
        for k in range(len(tensor))
    ]


# ---------------------------------------------------------------------------- pyramid store
class PyramidStore:
    """fp16 pyramid features of a split's images, computed once: in memory, or as memmaps
    in a cache folder (``meta.json`` written last marks a complete entry)."""

    _MEMORY: dict[str, tuple[dict, list[np.ndarray]]] = {}  # in-process reuse across the units of a task

    def __init__(self, levels: list[np.ndarray], key: str, source: str, seconds: float = 0.0):
        self.levels, self.key, self.source, self.seconds = levels, key, source, seconds
        self.on_device: list[torch.Tensor] | None = None

    def make_resident(self, device: torch.device) -> int:
        """Copy every level into device memory when they fit (:mod:`benchmark.resident`), so
        each validation pass gathers there instead of re-reading memory or disk (RSNA val at
        224: ~25 GB per pass). Same fp16 values: same results. Returns the bytes copied."""
        size = sum(int(np.prod(level.shape)) * 2 for level in self.levels)
        if not fits(size, device):
            return 0
        self.on_device = [rows_to_device(level, None, device) for level in self.levels]
        return size

    def __len__(self):
        return len(self.levels[0])

    def batch(self, index, device) -> list[torch.Tensor]:
        if self.on_device is not None:
            rows = torch.as_tensor(np.asarray(index, dtype=np.int64), device=device)
            return [level.index_select(0, rows).float() for level in self.on_device]
        return [torch.from_numpy(np.ascontiguousarray(level[index])).to(device).float() for level in self.levels]

    @staticmethod
    def key(key_parts: dict) -> str:
        return hashlib.sha256(
            json.dumps({"pyramid_version": PYRAMID_VERSION, **key_parts}, sort_keys=True, default=str).encode()
        ).hexdigest()

    @staticmethod
    def folder(ctx: RunContext, key: str) -> Path | None:
        """Where a pyramid larger than MEMORY_BUDGET is cached on disk (None: no feature cache)."""
        return ctx.cache_dir / "pyramids" / key[:2] / key if ctx.feature_cache is not None else None

    @classmethod
    def get(
        cls, ctx: RunContext, model, images: np.ndarray, key_parts: dict, batch_size: int, desc: str
    ) -> "PyramidStore":
        key = cls.key(key_parts)
        if key in cls._MEMORY:
            return cls(cls._MEMORY[key][1], key, "memory (reused)")
        folder = cls.folder(ctx, key)
        if folder is not None and (folder / "meta.json").is_file():
            meta = json.loads((folder / "meta.json").read_text())
            levels = [
                np.memmap(folder / f"level{k}.f16", dtype=np.float16, mode="r", shape=tuple(s))
                for k, s in enumerate(meta["shapes"])
            ]
            return cls(levels, key, "disk cache (reused)")
        started = time.perf_counter()
        with torch.inference_mode():
            probe = model.extract_feat(to_input(images[:1], ctx.device))
        shapes = [(len(images), *level.shape[1:]) for level in probe]
        total = sum(int(np.prod(s)) for s in shapes) * 2
        on_disk = folder is not None and total > MEMORY_BUDGET
        lock = file_lock(ctx.cache_dir / "pyramids" / ".locks" / f"{key}.lock") if on_disk else _null()
        with lock:
            if on_disk and (folder / "meta.json").is_file():
                return cls.get(ctx, model, images, key_parts, batch_size, desc)
            if on_disk:
                folder.mkdir(parents=True, exist_ok=True)
                levels = [
                    np.memmap(folder / f"level{k}.f16", dtype=np.float16, mode="w+", shape=s)
                    for k, s in enumerate(shapes)
                ]
            else:
                levels = [np.empty(s, dtype=np.float16) for s in shapes]
            with tqdm(total=len(images), desc=desc, unit="img", leave=False, disable=not ctx.progress) as bar:
                for start in range(0, len(images), batch_size):
                    with torch.inference_mode(), autocast_context(ctx.device):
                        feats = model.extract_feat(to_input(images[start : start + batch_size], ctx.device))
                    for level, feat in zip(levels, feats):
                        level[start : start + len(feat)] = feat.float().cpu().numpy().astype(np.float16)
                    bar.update(len(feats[0]))
            if on_disk:
                for level in levels:
                    level.flush()
                (folder / "meta.json").write_text(
                    json.dumps({"key_parts": key_parts, "shapes": [list(s) for s in shapes]}, default=str)
                )
                source = "disk cache (computed)"
            else:
                group = {k: v for k, v in key_parts.items() if k not in ("split", "ids", "order", "content")}
                for other in [k for k, (g, _) in cls._MEMORY.items() if g != group]:
                    del cls._MEMORY[other]  # keep one (dataset, encoder, size) at a time
                source = "memory (computed)"
        store = cls(levels, key, source, time.perf_counter() - started)
        if not on_disk:
            cls._MEMORY[key] = (group, levels)
        return store


def pyramid_key_parts(
    ctx: RunContext, data: TaskData, split: str, ids: list[str], size: int, geometry: str = "stretch"
) -> dict:
    """What a val/test pyramid store is keyed by (same ids, other image bytes: other maps)."""
    return {
        "encoder": ctx.encoder_identity(),
        "size": size,
        "geometry": geometry,
        "dataset": data.task.dataset,
        "mask_source": data.task.mask_source,
        "manifest": data.manifest.sha256,
        "split": split,
        "ids": ids_hash(ids),
        "order": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        "content": content_digest(data.records.loc[ids, "path"].tolist()),
    }


def pyramid_disk_bytes(ctx: RunContext, data: TaskData, split: str, ids: list[str]) -> int:
    """Bytes the ``split`` pyramid store of ``ids`` would still write to the disk cache: 0 when
    it is cached already, kept in memory (under MEMORY_BUDGET) or not used (bn drift)."""
    plan = plan_of(data.task, ctx)
    if ctx.feature_cache is None or plan.bn_drift or not ids:
        return 0
    size = plan.input_size
    with torch.inference_mode():
        levels = ctx.encoder.forward_pyramid(ctx.encoder.prepare(torch.zeros(1, 1, size, size, device=ctx.device)))
    total = len(ids) * sum(int(np.prod(level.shape[1:])) for level in levels) * 2
    if total <= MEMORY_BUDGET:
        return 0
    geometry = plan.task.recipe.geometry
    folder = PyramidStore.folder(ctx, PyramidStore.key(pyramid_key_parts(ctx, data, split, ids, size, geometry)))
    return 0 if (folder / "meta.json").is_file() else total


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------- training
def augment_batch(
    images: np.ndarray,
    masks: np.ndarray,
    index: np.ndarray,
    ids: list[str],
    augmentation: ShiftScaleRotate,
    seed: int,
    epoch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Training images ``index`` and their masks through shift-scale-rotate, each image with its
    own generator seeded by (seed, epoch, image id): the same augmentation whatever the batch."""
    pairs = [
        shift_scale_rotate(images[k], masks[k], augmentation, np.random.default_rng(image_seed(seed, epoch, ids[k])))
        for k in index
    ]
    return np.stack([image for image, _ in pairs]), np.stack([mask for _, mask in pairs])


def train_step(model, optim_wrapper, images: np.ndarray, masks: np.ndarray, device: torch.device) -> torch.Tensor:
    """One optimiser step on an augmented batch: the frozen encoder's forward on it, the decoder's
    forward and backward, the optimiser's update. Returns the loss (on the device)."""
    with autocast_context(device):
        losses = model.loss(to_input(images, device), data_samples(masks, device))
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)
    return loss


def validation_loss(
    model, features, masks: np.ndarray, eval_batch: int, batch_size: int, device: torch.device
) -> float:
    """Mean loss over the ``len(masks)`` validation images; ``features(index)`` gives the pyramid
    of images ``index``. The decoder runs on chunks of ``eval_batch`` images (eval-mode batch norm:
    batch independent); the loss, whose soft Dice is batch-level, on training-size batches."""
    total, count = 0.0, len(masks)
    with torch.no_grad():
        for start in range(0, count, eval_batch):
            index = np.arange(start, min(start + eval_batch, count))
            feats = features(index)
            with autocast_context(device):
                logits = model.decode_head(feats)
            for sub in range(0, len(index), batch_size):
                part = index[sub : sub + batch_size]
                losses = model.decode_head.loss_by_feat(
                    logits[sub : sub + batch_size].float(), data_samples(masks[part], device)
                )
                loss, _ = model.parse_losses(losses)
                total += float(loss) * len(part)
    return total / max(1, count)


def run_unit(ctx: RunContext, data: TaskData, unit: UnitId) -> UnitOutcome:
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import set_random_seed

    from ..openmmlab.segmentation_config import build_segmentor, segmentation_config

    plan = plan_of(data.task, ctx)
    task: SegmentationTaskSpec = plan.task
    recipe = task.recipe
    timings: dict[str, float] = {}
    size, drift = plan.input_size, plan.bn_drift
    device = ctx.device
    ctx.encoder.eval()

    train_ids = unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)
    val_ids = limited(data.split_ids["val"], ctx.limit)
    test_ids = limited(data.split_ids["test"], ctx.limit)
    t0 = time.perf_counter()
    train_images, train_masks = load_images(ctx, data, train_ids, size, recipe.geometry)
    val_images, val_masks = load_images(ctx, data, val_ids, size, recipe.geometry)
    test_images, test_masks = load_images(ctx, data, test_ids, size, recipe.geometry)
    timings["decode_images"] = time.perf_counter() - t0

    # ---- model from the generated config
    spec = ctx.loaded.spec
    config = segmentation_config(
        task,
        spec,
        tuple(ctx.encoder.pyramid_channels),
        input_size=size,
        seed=unit.seed,
        bn_drift=drift,
        max_epochs=plan.max_epochs,
        patience=plan.patience,
        min_delta=plan.min_delta,
    )
    loop = config["train_loop"]  # what the loop below runs: read from the config the result stores
    epochs_cap, batch_size = int(loop["max_epochs"]), int(loop["batch_size"])
    stop_patience, stop_min_delta = int(loop["early_stopping"]["patience"]), float(loop["early_stopping"]["min_delta"])
    set_random_seed(unit.seed)
    model = build_segmentor(config, loaded=ctx.loaded)  # the model uses the harness's encoder object
    if drift:  # batch-norm statistics will change: train a private copy of the encoder
        model.backbone.encoder = copy.deepcopy(ctx.encoder)
    model.to(device)
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(config["optim_wrapper"]))
    eval_batch = max(batch_size, 4 * batch_size)  # a multiple of the training batch size

    # ---- val / test pyramids, computed once (not under bn drift)
    def key_parts(split: str, ids: list[str]) -> dict:
        return pyramid_key_parts(ctx, data, split, ids, size, recipe.geometry)

    stores: dict[str, PyramidStore] = {}
    cache_info = {}
    if not drift:
        model.eval()
        for split, ids, images in (("val", val_ids, val_images), ("test", test_ids, test_images)):
            t0 = time.perf_counter()
            stores[split] = PyramidStore.get(
                ctx, model, images, key_parts(split, ids), eval_batch, f"{task.id} {split} pyramid"
            )
            timings[f"features_{split}"] = time.perf_counter() - t0
            # the validation pyramids are read every epoch; the test ones once (no copy for them)
            cache_info[split] = {
                "source": stores[split].source,
                "key": stores[split].key,
                "resident_bytes": stores[split].make_resident(device) if split == "val" else 0,
            }

    def eval_features(split: str, images: np.ndarray, index: np.ndarray) -> list[torch.Tensor]:
        if split in stores:
            return stores[split].batch(index, device)
        with torch.inference_mode(), autocast_context(device):
            return [f.float() for f in model.extract_feat(to_input(images[index], device))]

    def val_loss() -> float:
        model.eval()
        return validation_loss(
            model, lambda index: eval_features("val", val_images, index), val_masks, eval_batch, batch_size, device
        )

    # ---- training loop
    rng = np.random.default_rng(unit.seed)
    best_state, best_loss, best_epoch = None, math.inf, 0
    stopping = Patience(stop_patience, stop_min_delta)  # benchmark/early_stopping.py
    history = []
    t_train = time.perf_counter()
    phase = {"train_steps": 0.0, "validation": 0.0, "augment": 0.0}
    bar = tqdm(
        range(epochs_cap),
        desc=f"{unit.name} U-Net",
        unit="epoch",
        disable=not ctx.progress,
        leave=False,
        dynamic_ncols=True,
    )
    epochs_run = 0
    for epoch in bar:
        model.train()
        order = rng.permutation(len(train_ids))
        running, seen = 0.0, 0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            if (
                len(index) < 2 and len(order) > 1
            ):  # batch norm needs two samples; fold a lone tail into the epoch's next use
                continue
            ta = time.perf_counter()
            images, masks = augment_batch(
                train_images, train_masks, index, train_ids, recipe.augmentation, unit.seed, epoch
            )
            phase["augment"] += time.perf_counter() - ta
            ts = time.perf_counter()
            loss = train_step(model, optim_wrapper, images, masks, device)
            phase["train_steps"] += time.perf_counter() - ts
            running += float(loss.detach()) * len(index)
            seen += len(index)
        tv = time.perf_counter()
        current = val_loss()
        phase["validation"] += time.perf_counter() - tv
        epochs_run = epoch + 1
        history.append({"epoch": epoch + 1, "train_loss": running / max(1, seen), "val_loss": current})
        bar.set_postfix(train=f"{running / max(1, seen):.3f}", val=f"{current:.3f}")
        if current < best_loss:
            best_loss, best_epoch = current, epoch + 1
            state = model.state_dict() if drift else model.decode_head.state_dict()
            best_state = {k: v.detach().clone() for k, v in state.items()}
        if stopping.update(current):
            break
    bar.close()
    timings["training"] = time.perf_counter() - t_train
    timings.update({f"training_{k}": v for k, v in phase.items()})
    if best_state is not None:
        (model if drift else model.decode_head).load_state_dict(best_state)

    # ---- test with the best checkpoint
    t0 = time.perf_counter()
    model.eval()
    counts = {"intersection": [], "pred_pixels": [], "true_pixels": []}
    with torch.no_grad():
        for start in range(0, len(test_ids), eval_batch):
            index = np.arange(start, min(start + eval_batch, len(test_ids)))
            feats = eval_features("test", test_images, index)
            with autocast_context(device):
                logits = model.decode_head(feats)
            logits = torch.nn.functional.interpolate(
                logits.float(), size=(size, size), mode="bilinear", align_corners=False
            )
            probabilities = torch.sigmoid(logits[:, 0]).cpu().numpy()
            for name, values in mask_counts(probabilities, test_masks[index], recipe.threshold).items():
                counts[name].extend(values.tolist())
    timings["test"] = time.perf_counter() - t0
    counts["pixels"] = [size * size] * len(test_ids)
    metrics = segmentation_metrics(counts)
    predictions = pd.DataFrame({"image_id": test_ids, **counts})
    from ..seg_metrics import per_image_dice

    predictions["dice"] = per_image_dice(
        predictions["intersection"], predictions["pred_pixels"], predictions["true_pixels"]
    )
    predictions[f"target:{task.label_column}"] = data.records.loc[test_ids, task.label_column].to_numpy()

    hyper = {
        "recipe": recipe.model_dump(mode="json"),
        "input_size": size,
        "max_epochs": epochs_cap,
        "seed": unit.seed,
        "mmengine_config": json.loads(json.dumps(config, default=list)),
        "eval_features_cached": not drift,
        "encoder_frozen": "requires_grad=False, eval mode"
        + ("; MGCA bn drift: batch-norm statistics updated while training" if drift else ""),
        "suite": ctx.suite.describe(),
    }
    return UnitOutcome(
        metrics=metrics,
        predictions=predictions,
        data={
            **data.describe(unit.fraction, unit.seed),
            "n_train": len(train_ids),
            "train_ids_sha256": ids_hash(train_ids),
            "n_val": len(val_ids),
            "n_test": len(test_ids),
            "n_train_positive": int(train_masks.reshape(len(train_ids), -1).any(1).sum()),
        },
        hyperparameters=hyper,
        training=TrainingLog(
            best_epoch=best_epoch,
            epochs_run=epochs_run,
            best_val_loss=best_loss,
            history=history,
            details={"feature_cache": cache_info},
        ),
        timings=timings,
        flags={"max_epochs_capped": epochs_cap} if plan.epochs_capped else {},
    )
