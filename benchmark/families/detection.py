"""Detection unit: frozen encoder pyramid (the levels at strides 8/16/32: a ResNet's layer2/3/4)
-> YOLOv3 neck + head (mmdet) -> mAP.

There is no augmentation in the detection protocol, so the frozen encoder's three feature
maps of an image never change: they are computed ONCE per (encoder, split, input size) and
stored in the on-disk fp16 :class:`~benchmark.features.FeatureCache` (flattened into one
vector per image), then every epoch trains the mmdet model's ``neck`` and ``bbox_head`` on
them. ``--no-feature-cache`` (exact mode) instead runs the frozen encoder on the decoded images
in every training and validation step, through the same function the cache stores (bf16
autocast on CUDA, rounded to fp16), so both modes give the same numbers (bit for bit on CPU;
on a GPU up to the convolution algorithm cuDNN picks for a batch size) and the cache is a
pure speed-up (``bench/detection_speed.py``; tests/test_detection.py). fp16
rounding moves random ResNet-50 maps by 0.15% of their spread across images; training a head
is chaotic enough to turn that into seed-like noise (demo Object-CXR, seeds 0-4: fp32 maps
10.2 +- 1.5 mAP, fp16 9.0 +- 1.0, paired differences +3.5 to -1.0, not significant). Under
``--mgca-bn-drift`` the mmdet model's own backbone runs in train mode in every step instead.

Images become the input square as the recipe's ``geometry`` says: ``"stretch"`` (default,
the reference's ``cv2.resize(image, (224, 224), INTER_LINEAR)``, aspect not kept) or
``"letterbox"`` (protocol v1: longer side resized with area interpolation, zero-padded to a
centred square); no crop. Boxes follow the same transform, and predictions are mapped back to
the original pixel space, where the metric is computed. The head's semantics follow the
recipe's ``yolo`` switch (:mod:`benchmark.openmmlab.detection_config`): the reference's
(MGCA's) target assignment, loss and objectness-only score by default, mmdet's stock YOLOv3
with ``--yolo-semantics mmdet``.
"""

from __future__ import annotations

import json
import logging
import time
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..context import RunContext
from ..det_metrics import detection_metrics, unit_detection_metrics
from ..early_stopping import Patience
from ..errors import ConfigError, ImageDecodeError
from ..features import ViewDataset, ViewPlan, encode_batch
from ..preprocess import PreprocessSpec
from ..resident import fits, rows_to_device
from ..results import UnitId
from ..task_data import TaskData, limited, unit_train_ids
from .. import unit_plan
from ..unit_outcome import TrainingLog, UnitOutcome
from ..unit_plan import DetectionPlan, detection_plan
from ..task_spec import DetectionTaskSpec

DETECTION_FEATURE_VERSION = 1
REQUIRES = ("mmengine", "mmcv", "mmdet")  # checked by benchmark.families.family_module


def plan_of(task: DetectionTaskSpec, ctx: RunContext) -> DetectionPlan:
    """The unit's effective settings (benchmark/unit_plan.py): the task's recipe with the suite's
    overrides and the user's recorded switches (``--yolo-semantics``, ``--geometry``), the
    input size, the loss min_delta of the stopping rule and batch-norm drift."""
    return detection_plan(task, ctx.suite, ctx.flags)


# ---------------------------------------------------------------------------- geometry
@lru_cache(maxsize=None)
def image_shape(path: str) -> tuple[int, int]:
    """(height, width) of an image file, read from its header."""
    if path.lower().endswith((".dcm", ".dicom")):
        import pydicom

        from ..images import dicom_failure

        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            return int(header.Rows), int(header.Columns)
        except Exception as error:  # one line naming the file, not pydicom's traceback
            raise ImageDecodeError(path, dicom_failure(path, error)) from error
    from PIL import Image

    from ..images import raster_failure

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(path, raster_failure(path, error)) from error


def letterbox(height: int, width: int, size: int) -> tuple[float, float, int, int]:
    """(scale_x, scale_y, left, top) of :func:`benchmark.preprocess.resize_and_pad`."""
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return new_w / width, new_h / height, (size - new_w) // 2, (size - new_h) // 2


def input_geometry(height: int, width: int, size: int, geometry: str) -> tuple[float, float, int, int]:
    """(scale_x, scale_y, left, top) mapping original pixels to the input square of
    :func:`benchmark.preprocess.fit_square` (stretch: each axis scaled on its own, no offset)."""
    if geometry == "stretch":
        return size / width, size / height, 0, 0
    return letterbox(height, width, size)


def xywh_to_xyxy(boxes) -> np.ndarray:
    array = np.asarray(boxes if boxes is not None and len(boxes) else np.zeros((0, 4)), dtype=np.float64).reshape(-1, 4)
    return np.concatenate([array[:, :2], array[:, :2] + array[:, 2:]], axis=1)


def to_input(boxes: np.ndarray, geometry) -> np.ndarray:
    sx, sy, left, top = geometry
    return boxes * np.array([sx, sy, sx, sy]) + np.array([left, top, left, top])


def from_input(boxes: np.ndarray, geometry, height: int, width: int) -> np.ndarray:
    sx, sy, left, top = geometry
    out = (boxes - np.array([left, top, left, top])) / np.array([sx, sy, sx, sy])
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out


# ---------------------------------------------------------------------------- features
def level_indices(encoder, recipe) -> tuple[int, ...]:
    """Positions in ``encoder.forward_pyramid``'s output of the levels the YOLOv3 neck takes:
    the levels at the recipe's strides (``recipe.level_strides``, 8/16/32), whatever the
    encoder's level count: (2, 3, 4) of a ResNet's 5 levels (strides 2-32), (1, 2, 3) of a
    ViT's 4 (strides 4-32)."""
    strides = [int(s) for s in encoder.pyramid_strides]
    missing = [s for s in recipe.level_strides if s not in strides]
    if missing:
        raise ConfigError(
            f"detection: the YOLOv3 neck takes the pyramid levels at strides {list(recipe.level_strides)}, but "
            f"encoder {getattr(encoder, 'arch', '?')} has levels at strides {strides} only (none at {missing}); "
            f"score this encoder on the other tasks (--tasks classification,segmentation)"
        )
    return tuple(strides.index(s) for s in recipe.level_strides)


class PyramidAsVector(torch.nn.Module):
    """Adapter for :class:`FeatureCache`: an encoder whose "global feature" is its selected
    pyramid levels, flattened and concatenated (one fp16 vector per image on disk)."""

    def __init__(self, encoder, out_indices):
        super().__init__()
        self.encoder, self.out_indices = encoder, tuple(out_indices)

    def prepare(self, grey: torch.Tensor) -> torch.Tensor:
        return self.encoder.prepare(grey)

    def forward_global(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.encoder.forward_pyramid(x)
        return torch.cat([levels[i].flatten(1) for i in self.out_indices], dim=1)


def level_shapes(encoder, out_indices, size: int, device) -> list[tuple[int, int, int]]:
    with torch.inference_mode():
        levels = encoder.forward_pyramid(encoder.prepare(torch.zeros(1, 1, size, size, device=device)))
    return [tuple(levels[i].shape[1:]) for i in out_indices]


def split_levels(flat: torch.Tensor, shapes) -> tuple[torch.Tensor, ...]:
    out, start = [], 0
    for c, h, w in shapes:
        n = c * h * w
        out.append(flat[:, start : start + n].reshape(-1, c, h, w))
        start += n
    return tuple(out)


class SplitPyramids:
    """The frozen pyramid levels of one split's images: cached (fp16 on disk) or exact."""

    def __init__(
        self,
        ctx: RunContext,
        data: TaskData,
        split: str,
        ids: list[str],
        size: int,
        out_indices,
        shapes,
        geometry: str = "stretch",
    ):
        self.ctx, self.data, self.split, self.ids, self.size = ctx, data, split, ids, size
        self.out_indices, self.shapes = tuple(out_indices), shapes
        self.position = {image_id: k for k, image_id in enumerate(ids)}
        # centre crop of a full-size square: identity
        self.spec = PreprocessSpec(resize=size, crop=size, geometry=geometry)
        self.dataset = ViewDataset(data.records.loc[ids, "path"].tolist(), ids, self.spec, ViewPlan(train=False))
        self.array = None
        self.resident, self.resident_row = None, {}

    def key_parts(self) -> dict:
        from ..splits import ids_hash

        return {
            "kind": "detection_pyramid",
            "version": DETECTION_FEATURE_VERSION,
            "encoder": self.ctx.encoder_identity(),
            "preprocess": self.spec.to_dict(),
            "out_indices": list(self.out_indices),
            "dataset": self.data.task.dataset,
            "manifest": self.data.manifest.sha256,
            "split": self.split,
            "ids": ids_hash(self.ids),
            "content": self.dataset.content_digest(),  # same ids, other image bytes: other features
        }

    def prepare(self, needed: list[str]) -> dict:
        """Cached mode: make sure the rows of ``needed`` are in the cache."""
        if self.ctx.feature_cache is None or bn_drift(self.ctx):
            return {"computed": 0, "cached": 0, "exact": True}
        ctx = self.ctx
        rows = [self.position[i] for i in needed]
        array, stats = ctx.feature_cache.features(
            self.key_parts(),
            PyramidAsVector(ctx.encoder, self.out_indices),
            self.dataset,
            rows,
            device=ctx.device,
            batch_size=ctx.encode_batch_size,
            workers=ctx.workers,
            upsample=None,
            desc=f"{self.data.task.id} {self.split} pyramid features",
            progress=ctx.progress,
        )
        self.array = array
        if self.split == "test":  # read once: residency would only add a copy
            return {**stats, "resident_bytes": 0}
        return {**stats, **self.make_resident(needed)}

    def make_resident(self, needed: list[str]) -> dict:
        """Copy the rows of ``needed`` from the on-disk cache into device memory when they fit
        (:mod:`benchmark.resident`), so epochs gather there instead of re-reading the memmap
        (RSNA at 224: ~22 GB of train maps per epoch). Same fp16 values: same results."""
        ids = list(dict.fromkeys(needed))
        size = len(ids) * self.array.shape[-1] * 2
        if not fits(size, self.ctx.device):
            return {"resident_bytes": 0}
        self.resident = rows_to_device(self.array[0], [self.position[i] for i in ids], self.ctx.device)
        self.resident_row = {image_id: k for k, image_id in enumerate(ids)}
        return {"resident_bytes": size}

    def levels(self, ids: list[str], backbone) -> tuple[torch.Tensor, ...]:
        """float32 pyramid levels of ``ids`` on the device."""
        device = self.ctx.device
        if self.resident is not None and all(i in self.resident_row for i in ids):
            index = torch.tensor([self.resident_row[i] for i in ids], device=device)
            return split_levels(self.resident.index_select(0, index).float(), self.shapes)
        if self.array is not None:
            rows = [self.position[i] for i in ids]
            flat = torch.from_numpy(np.asarray(self.array[0, rows, :], dtype=np.float32))
            return split_levels(flat.to(device), self.shapes)
        images = torch.stack([self.dataset[self.position[i]][1][0] for i in ids])
        if bn_drift(self.ctx):  # the model's own backbone, in train mode: its statistics drift
            with torch.no_grad():
                return tuple(backbone(images.to(device)))
        # exact mode: the very function the cache stores (same autocast, same fp16 rounding),
        # recomputed in every step instead of read from disk; so exact == cached
        flat = encode_batch(PyramidAsVector(self.ctx.encoder, self.out_indices), images, device, None)
        flat = torch.from_numpy(flat.cpu().numpy().astype(np.float16).astype(np.float32))
        return split_levels(flat.to(device), self.shapes)


def pyramid_disk_bytes(ctx: RunContext, data: TaskData, units: list[UnitId]) -> tuple[int, list[str]]:
    """Bytes the pyramid cache entries of ``units`` (one task) still have to write, and a line
    per split: rows not cached yet x the levels' values x 2 (fp16), as :func:`run_unit` fills them."""
    if ctx.feature_cache is None or bn_drift(ctx) or not units:
        return 0, []
    plan = plan_of(data.task, ctx)
    recipe, size = plan.recipe, plan.input_size
    levels = level_indices(ctx.encoder, recipe)
    shapes = level_shapes(ctx.encoder, levels, size, ctx.device)
    dim = sum(c * h * w for c, h, w in shapes)
    total, lines = 0, []
    for split in ("train", "val", "test"):
        if split == "train":
            needed = list(dict.fromkeys(i for u in units for i in unit_train_ids(data, u.fraction, u.seed, ctx.limit)))
            entry_ids = list(dict.fromkeys([*limited(data.split_ids["train"], ctx.limit), *needed]))
        else:
            needed = entry_ids = limited(data.split_ids[split], ctx.limit)
        pyramids = SplitPyramids(ctx, data, split, entry_ids, size, levels, shapes)
        rows = [pyramids.position[i] for i in needed]
        done_path = ctx.feature_cache.entry(ctx.feature_cache.key(pyramids.key_parts())) / "done.npy"
        if done_path.is_file():
            done = np.load(done_path)
            rows = [r for r in rows if r >= len(done) or not done[r]]
        if rows:
            total += len(rows) * dim * 2
            lines.append(
                f"{data.task.id} {split} pyramids: {len(rows):,} images x {dim:,} values x 2 B = "
                f"{len(rows) * dim * 2 / 1e6:,.1f} MB"
            )
    return total, lines


# ---------------------------------------------------------------------------- targets
class Targets:
    """Ground truth of images, in original pixels and in input space (as mmdet samples)."""

    def __init__(
        self, task: DetectionTaskSpec, data: TaskData, ids: list[str], size: int, geometry_name: str = "stretch"
    ):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        records = data.records.loc[ids]
        self.original, self.geometry, self.shape, self.samples = {}, {}, {}, {}
        for image_id, path, boxes in zip(ids, records["path"], records[task.box_column]):
            height, width = image_shape(str(path))
            geometry = input_geometry(height, width, size, geometry_name)
            xyxy = xywh_to_xyxy(boxes)
            self.original[image_id], self.geometry[image_id], self.shape[image_id] = xyxy, geometry, (height, width)
            sample = DetDataSample(
                metainfo=dict(
                    img_id=image_id,
                    img_shape=(size, size),
                    ori_shape=(size, size),
                    pad_shape=(size, size),
                    batch_input_shape=(size, size),
                    scale_factor=(1.0, 1.0),
                )
            )
            sample.gt_instances = InstanceData(
                bboxes=torch.as_tensor(to_input(xyxy, geometry), dtype=torch.float32),
                labels=torch.zeros(len(xyxy), dtype=torch.long),
            )
            self.samples[image_id] = sample
        self.on_device, self.device = self.samples, torch.device("cpu")

    def batch(self, ids: list[str], device) -> list:
        """The samples of ``ids`` on ``device``; moved there once, not in every step (mmdet's
        head only reads them)."""
        device = torch.device(device)
        if device != self.device:
            self.on_device, self.device = {k: s.to(device) for k, s in self.samples.items()}, device
        return [self.on_device[i] for i in ids]


# ---------------------------------------------------------------------------- model
def model_config(task: DetectionTaskSpec, recipe, ctx: RunContext, unit: UnitId, size: int):
    from ..openmmlab.detection_config import detection_config

    encoder = ctx.encoder
    levels = level_indices(encoder, recipe)
    return detection_config(
        recipe,
        fraction=unit.fraction,
        seed=unit.seed,
        encoder_spec=ctx.loaded.spec,
        out_indices=levels,
        in_channels=tuple(int(encoder.pyramid_channels[i]) for i in levels),
        strides=tuple(int(encoder.pyramid_strides[i]) for i in levels),
        input_size=size,
        num_classes=len(task.classes),
        load_kwargs={},
        bn_drift=bn_drift(ctx),
        loss_min_delta=plan_of(task, ctx).loss_min_delta,
    )


def bn_drift(ctx: RunContext) -> bool:
    """MGCA compatibility (--mgca-bn-drift): the encoder's BN statistics drift while training.
    Needs the encoder in every step, so it implies exact mode, on a private copy of the encoder."""
    return unit_plan.bn_drift(ctx.flags)


def build_model(cfg, ctx: RunContext, seed: int):
    from mmengine.logging import MMLogger
    from mmengine.runner import set_random_seed

    from ..openmmlab.detection_config import build_detector

    encoder = ctx.encoder
    if bn_drift(ctx):  # never let drifting statistics leak into the shared encoder
        import copy

        encoder = copy.deepcopy(encoder)
    set_random_seed(seed)
    model = build_detector(cfg.model, loaded=encoder)  # the model uses the harness's encoder object
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs one line per tensor
    try:
        model.neck.init_weights()  # the backbone keeps its checkpoint weights
        model.bbox_head.init_weights()
    finally:
        logger.setLevel(level)
    return model.to(ctx.device)


def head_parameters(model) -> list[torch.nn.Parameter]:
    return [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("backbone.")]


@torch.no_grad()
def predict(model, pyramids: SplitPyramids, targets: Targets, ids: list[str], batch_size: int, with_loss: bool = False):
    """{image_id: (n, 5) x1 y1 x2 y2 score in ORIGINAL pixels} after threshold and NMS
    (and, ``with_loss``, the mean per-image training loss of ``ids``)."""
    from mmdet.models.utils import unpack_gt_instances

    model.eval()
    out, loss_sum = {}, 0.0
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        samples = targets.batch(chunk, pyramids.ctx.device)
        outs = model.bbox_head(model.neck(pyramids.levels(chunk, model.backbone)))
        gt_instances, _, metas = unpack_gt_instances(samples)
        if with_loss:  # before predict_by_feat, which applies sigmoids in place
            loss, _ = model.parse_losses(model.bbox_head.loss_by_feat(*outs, gt_instances, metas))
            # the reference head's loss is a mean over the batch, mmdet's a sum: both become a sum
            loss_sum += float(loss) * (len(chunk) if getattr(model.bbox_head, "loss_is_batch_mean", False) else 1)
        results = model.bbox_head.predict_by_feat(*outs, batch_img_metas=metas, rescale=False)
        for image_id, result in zip(chunk, results):
            boxes = result.bboxes.detach().float().cpu().numpy().reshape(-1, 4).astype(np.float64)
            scores = result.scores.detach().float().cpu().numpy().reshape(-1, 1).astype(np.float64)
            height, width = targets.shape[image_id]
            out[image_id] = np.concatenate(
                [from_input(boxes, targets.geometry[image_id], height, width), scores], axis=1
            )
    return (out, loss_sum / max(1, len(ids))) if with_loss else out


PREPROCESS_TEXT = {
    "stretch": (
        "stretch: image resized to input_size x input_size (linear, aspect not kept), boxes scaled per axis; "
        "no crop, no augmentation"
    ),
    "letterbox": (
        "letterbox: longer side resized to input_size (area), zero-padded to a centred square; no crop, no augmentation"
    ),
}
SELECTION_RULE = "validation map under the sound all-images rule (never MGCA's reference rule)"


def train_detector(model, cfg, iou_thresholds, train, val, *, progress: bool, desc: str):
    """AdamW on neck + head; early stopping on the validation mAP under the sound all-images
    rule (a head that predicts nothing cannot look good on it); returns the best state.
    Every setting comes from the unit's config ``cfg`` (``optimizer``, ``train_loop``,
    ``randomness``), so the config a result stores is what ran."""
    pyramids, targets, ids = train
    val_pyramids, val_targets, val_ids = val
    device = pyramids.ctx.device
    loop, stopping, opt = cfg["train_loop"], cfg["train_loop"]["early_stopping"], cfg["optimizer"]
    batch_size, patience, min_delta = (
        int(loop["batch_size"]),
        int(stopping["patience"]),
        float(stopping["loss_min_delta"]),
    )
    optimiser = torch.optim.AdamW(
        head_parameters(model), lr=opt["lr"], betas=tuple(opt["betas"]), weight_decay=opt["weight_decay"]
    )
    generator = torch.Generator().manual_seed(int(cfg["randomness"]["seed"]))
    best = {"map": -1.0, "loss": float("inf"), "epoch": 0, "state": None}
    stopping = Patience(patience, min_delta)
    history = []
    bar = tqdm(
        range(int(loop["max_epochs"])), desc=desc, unit="epoch", leave=False, dynamic_ncols=True, disable=not progress
    )
    for epoch in bar:
        model.train()
        order = torch.randperm(len(ids), generator=generator).tolist()
        total, batches = 0.0, 0
        for start in range(0, len(ids), batch_size):
            chunk = [ids[k] for k in order[start : start + batch_size]]
            levels = pyramids.levels(chunk, model.backbone)
            losses = model.bbox_head.loss(model.neck(levels), targets.batch(chunk, device))
            loss, _ = model.parse_losses(losses)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            batches += 1
        val_preds, val_loss = predict(model, val_pyramids, val_targets, val_ids, max(16, batch_size), with_loss=True)
        val_map = detection_metrics(val_targets.original, val_preds, val_ids, iou_thresholds)["map"]
        history.append(
            {"epoch": epoch + 1, "train_loss": total / max(1, batches), "val_loss": val_loss, "val_map": val_map}
        )
        bar.set_postfix(loss=f"{total / max(1, batches):.3f}", val_map=f"{val_map:.3f}")
        # early stopping on val mAP with the loss as tie-break (benchmark/early_stopping.py); the
        # state kept is the best by (mAP, -loss)
        stop = stopping.update(val_loss, score=val_map)
        if (val_map, -val_loss) > (best["map"], -best["loss"]):
            best = {
                "map": val_map,
                "loss": val_loss,
                "epoch": epoch + 1,
                "state": {
                    k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("backbone.")
                },
            }
        if stop:
            break
    model.load_state_dict(best["state"], strict=False)
    return {
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "best_val_map": best["map"],
        "best_val_loss": best["loss"],
        "selection": SELECTION_RULE,
        "history": history,
    }


# ---------------------------------------------------------------------------- unit
def key_parts(ctx: RunContext, data: TaskData, unit: UnitId) -> dict:
    """What the unit key hashes beside the plan and the shared parts (benchmark/runner.py)."""
    from ..splits import ids_hash

    return {
        "feature_version": DETECTION_FEATURE_VERSION,
        "train_ids": ids_hash(unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)),
        "exact": ctx.feature_cache is None,
    }


def predictions_table(test_ids: list[str], targets: Targets, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per test image (kind "image"), per ground-truth box ("gt") and per surviving
    predicted box ("pred", with its score), in original pixels: the metric is recomputable."""
    rows = []
    for image_id in test_ids:
        height, width = targets.shape[image_id]
        rows.append((image_id, "image", np.nan, np.nan, np.nan, np.nan, np.nan, width, height))
        for x1, y1, x2, y2 in targets.original[image_id]:
            rows.append((image_id, "gt", np.nan, x1, y1, x2, y2, width, height))
        for x1, y1, x2, y2, score in preds.get(image_id, np.zeros((0, 5))):
            rows.append((image_id, "pred", score, x1, y1, x2, y2, width, height))
    return pd.DataFrame(rows, columns=["image_id", "kind", "score", "x1", "y1", "x2", "y2", "width", "height"])


def run_unit(ctx: RunContext, data: TaskData, unit: UnitId) -> UnitOutcome:
    from ..splits import ids_hash

    task: DetectionTaskSpec = data.task
    plan = plan_of(task, ctx)
    recipe, size = plan.recipe, plan.input_size
    timings: dict[str, float] = {}
    ctx.encoder.eval()

    train_ids = unit_train_ids(data, unit.fraction, unit.seed, ctx.limit)
    ids = {
        "train": train_ids,
        "val": limited(data.split_ids["val"], ctx.limit),
        "test": limited(data.split_ids["test"], ctx.limit),
    }
    levels = level_indices(ctx.encoder, recipe)
    shapes = level_shapes(ctx.encoder, levels, size, ctx.device)
    pyramids, targets, cache_stats = {}, {}, {}
    for split, split_ids in ids.items():
        t0 = time.perf_counter()
        # the train split's entry holds every train image; a 1% unit computes only its own rows
        entry_ids = limited(data.split_ids["train"], ctx.limit) if split == "train" else split_ids
        entry_ids = list(dict.fromkeys([*entry_ids, *split_ids]))
        pyramids[split] = SplitPyramids(ctx, data, split, entry_ids, size, levels, shapes, recipe.geometry)
        cache_stats[split] = {k: v for k, v in pyramids[split].prepare(split_ids).items() if k != "key"}
        targets[split] = Targets(task, data, split_ids, size, recipe.geometry)
        timings[f"features_{split}"] = time.perf_counter() - t0

    cfg = model_config(task, recipe, ctx, unit, size)
    model = build_model(cfg, ctx, unit.seed)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if ctx.device.type == "cpu":
        # the neck/head tensors are small: on CPU, intra-op threads cost more than they gain
        # (measured 35x slower per step with 2 threads on 2 shared cores); restored below
        torch.set_num_threads(1)
    try:
        training = train_detector(
            model,
            cfg,
            recipe.iou_thresholds,
            (pyramids["train"], targets["train"], train_ids),
            (pyramids["val"], targets["val"], ids["val"]),
            progress=ctx.progress,
            desc=f"{unit.name} YOLOv3",
        )
        timings["train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        test_preds = predict(
            model, pyramids["test"], targets["test"], ids["test"], max(16, recipe.batch_size_for(unit.fraction))
        )
        timings["test"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)

    metrics = unit_detection_metrics(targets["test"].original, test_preds, ids["test"], recipe.iou_thresholds)
    predictions = predictions_table(ids["test"], targets["test"], test_preds)

    resolved = json.loads(json.dumps(cfg.to_dict(), default=lambda o: list(o) if isinstance(o, tuple) else str(o)))
    return UnitOutcome(
        metrics=metrics,
        predictions=predictions,
        data={
            **data.describe(unit.fraction, unit.seed),
            "n_train": len(train_ids),
            "train_ids_sha256": ids_hash(train_ids),
            "n_val": len(ids["val"]),
            "n_test": len(ids["test"]),
            "n_train_with_boxes": int(sum(len(targets["train"].original[i]) > 0 for i in train_ids)),
        },
        hyperparameters={
            "recipe": recipe.model_dump(mode="json"),
            "recipe_overrides": {k: v for k, v in recipe.model_dump().items() if v != task.recipe.model_dump()[k]},
            "lr": recipe.lr_for(unit.fraction),
            "batch_size": recipe.batch_size_for(unit.fraction),
            "input_size": size,
            "preprocess": PREPROCESS_TEXT[recipe.geometry],
            "pyramid_level_shapes": [list(s) for s in shapes],
            "seed": unit.seed,
            "suite": ctx.suite.describe(),
            "mmengine_config": resolved,
        },
        training=TrainingLog(
            best_epoch=training["best_epoch"],
            epochs_run=training["epochs_run"],
            best_val_loss=training["best_val_loss"],
            history=training["history"],
            details={
                "best_val_map": training["best_val_map"],
                "selection": training["selection"],
                "feature_cache": cache_stats,
            },
        ),
        timings=timings,
        flags={"exact_features": ctx.feature_cache is None or bn_drift(ctx), "mgca_bn_drift": bn_drift(ctx)},
    )
