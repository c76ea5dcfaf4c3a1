"""Where the time goes: each phase of the PAPER suite timed at its real shapes, projected to the suite.

    .venv/bin/python bench/suite_time.py [--device auto|cpu|cuda] [--encoder random:resnet50] [--quick] [--json OUT]

No dataset is read: images, masks, boxes and features are random tensors of the real sizes,
and every timed call is the harness's own code path on in-memory stand-ins:

(a) encoding, images/s of the frozen encoder (``models.loading.load_encoder``) at each family's
    input and batch: classification through ``benchmark.features.encode_batch`` on the 224 crop
    with ``encoder_upsample`` (299 for CNNs), batch ``--batch-size`` (the CLI's default: 256 on
    CUDA, 32 on CPU); segmentation's val/test pyramids through ``PyramidStore.get`` (224, batch
    4 x the training batch; kept in memory here, while the paper's exceed its 4 GiB budget and are
    written to a disk memmap, whose writes are not timed); detection's cached stride-8/16/32 maps
    through ``encode_batch`` of ``PyramidAsVector`` (224). Decoding the image files is not included
    (``bench/classification_throughput.py`` measures it per worker process).
(b) linear probe: seconds per epoch of ``benchmark.batched_probe.train_linear_probes`` (the
    default ``--probe-batching on``: the 3 seeds of a task and fraction as one group) at the real
    training-set sizes, the task's validation size, batch 48, the encoder's feature size and 4
    cached views per image.
(c) segmentation: seconds per training step of the unit's mmseg model (``segmentation_config`` +
    ``build_segmentor``, AdamW from its ``optim_wrapper``): shift-scale-rotate, the frozen encoder's
    forward on the augmented batch (it runs every epoch), decoder forward/backward, AdamW, as
    ``benchmark/families/segmentation.py`` ``run_unit`` runs them; and seconds per validation
    image of its validation pass on cached pyramids (a ``PyramidStore``).
(d) detection: seconds per step of ``benchmark.families.detection.train_detector`` (YOLOv3 neck +
    head on cached maps held on the device) at batch 8 (1%) and 16 (10%, 100%), and seconds per
    image of ``predict`` with the validation loss plus the validation mAP, on the unit's mmdet
    model (``model_config`` + ``build_model``).

Sizes: training sets per fraction from the committed manifests (``tasks/manifests``: CheXpert,
RSNA, SIIM's balanced sets), MGCA's table for COVIDx and Object-CXR (their manifests are built
from the user's label files) and CheXpert's 202 official validation images as its test set.
Projection: a unit runs E epochs of (training + validation), then one test pass; E is the recipe's
epoch cap (an upper bound) and, in the "typical" column, an ASSUMPTION read from the committed demo
results (``--typical-from``): the median best epoch / epoch cap of each family there, times the
paper cap, plus the paper's patience. Encoding is counted once per task (the caches are shared by
its fractions and seeds). Zero-shot units are not counted (they need an encoder with a text side).
Timed calls follow warm-up calls and end with ``torch.cuda.synchronize()`` on a GPU. Default
samples: on CUDA probes at the real sizes (3 epochs per group), 30 segmentation and 50 detection
steps per batch size; on CPU probes on at most 20,000 rows (larger sets scaled linearly), 4 / 6
steps. ``--quick`` (a few minutes on 2 CPU cores): encoder batches of 4 on CPU, 1 segmentation and
2 detection steps, probes on at most 4,000 rows, 2 epochs. ``--threads`` sets torch's CPU threads
(detection's neck and head run on one thread on CPU, as the harness runs them).
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import glob
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.cli import resolve_device  # noqa: E402
from benchmark.context import RunContext  # noqa: E402
from benchmark.data_roots import DataRoots  # noqa: E402
from benchmark.errors import BenchmarkError  # noqa: E402
from benchmark.provenance import device_description, git_state  # noqa: E402
from benchmark.registry import all_tasks  # noqa: E402
from benchmark.splits import read_manifest  # noqa: E402
from benchmark.suites import REPO_MANIFESTS, paper_suite  # noqa: E402
from models.loading import load_encoder  # noqa: E402

SEEDS = (0, 1, 2)
FRACTIONS = (1, 10, 100)
FAMILY_TASKS = {
    "classification": ("chexpert_cls", "rsna_cls", "covidx_cls"),
    "segmentation": ("siim_seg", "rsna_seg"),
    "detection": ("rsna_det", "objectcxr_det"),
}
# Datasets without a committed manifest (built from the user's label files): MGCA's table
# (train, val, test; tasks/split_recipes.py); the 10% / 1% sizes follow benchmark.splits.draw_subsets.
TABLE_SIZES = {"covidx": (23_988, 5_998, 400), "object_cxr": (6_400, 1_600, 1_000)}
CHEXPERT_TEST = 202  # the official valid.csv, frontal (read at run time, not in the manifest)


# ---------------------------------------------------------------------------- sizes and epochs
def split_sizes(task) -> dict:
    """{"train": {fraction: n}, "val": n, "test": n, "source": ...} of a paper task (seed 0; the
    nested subsets of every seed have the same size)."""
    committed = REPO_MANIFESTS / f"{task.dataset}.csv.gz"
    if task.dataset in TABLE_SIZES:
        train, val, test = TABLE_SIZES[task.dataset]
        sizes = {100: train, **{p: int(round(train * p / 100)) for p in (10, 1)}}
        return {"train": sizes, "val": val, "test": test, "source": "MGCA's split table (no committed manifest)"}
    manifest = read_manifest(committed, task.dataset)
    frame = manifest.frame
    counts = frame["split"].value_counts().to_dict()
    train = {}
    for fraction in FRACTIONS:
        column = manifest.training_column(fraction, SEEDS[0])
        train[fraction] = int(frame[column].sum()) if column else int(counts.get("train", 0))
    test = int(counts.get("test", 0)) or (CHEXPERT_TEST if task.dataset == "chexpert" else 0)
    if not test:
        raise SystemExit(f"{committed}: no test split and no known official test size for {task.dataset}")
    source = f"tasks/manifests/{committed.name}"
    if not counts.get("test"):
        source += f" (test: the official valid.csv, {test} frontal images)"
    return {"train": train, "val": int(counts["val"]), "test": test, "source": source}


def family_caps(ctx, tasks: dict) -> dict:
    """{family: (epoch cap, patience)} of the paper recipes, read from the units' plans."""
    from benchmark.families import classification, detection, segmentation

    cls = classification.plan_of(tasks["chexpert_cls"], ctx).probe
    seg = segmentation.plan_of(tasks["siim_seg"], ctx)
    det = detection.plan_of(tasks["rsna_det"], ctx).recipe
    return {
        "classification": (int(cls.max_epochs), int(cls.patience)),
        "segmentation": (int(seg.max_epochs), int(seg.patience)),
        "detection": (int(det.max_epochs), int(det.patience)),
    }


def typical_epochs(folder: str | None, caps: dict) -> dict:
    """The "typical" epochs per family (an assumption): median over the demo results under
    ``folder`` of best epoch / that unit's epoch cap, times the paper cap, plus the paper's
    patience (early stopping runs that many epochs past the best), at most the cap."""
    out: dict = {}
    if not folder:
        return out
    ratios: dict[str, list[float]] = {}
    for path in sorted(glob.glob(str(Path(folder) / "*" / "results" / "demo" / "*" / "*.json"))):
        try:
            result = json.loads(Path(path).read_text())
            family, hyper = result["family"], result["hyperparameters"]
            cap = {
                "classification": lambda: hyper["probe"]["max_epochs"],
                "segmentation": lambda: hyper["max_epochs"],
                "detection": lambda: hyper["recipe"]["max_epochs"],
            }[family]()
            ratios.setdefault(family, []).append(result["training"]["best_epoch"] / cap)
        except (KeyError, ValueError, TypeError, OSError):
            continue  # zero-shot results (no epochs), partly written files
    for family, values in ratios.items():
        if family not in caps:
            continue
        cap, patience = caps[family]
        median = statistics.median(values)
        out[family] = {
            "epochs": min(cap, math.ceil(median * cap) + patience),
            "median_best_ratio": round(median, 4),
            "max_best_ratio": round(max(values), 4),
            "demo_units": len(values),
        }
    return out


# ---------------------------------------------------------------------------- timing helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, warmup: int, repeats: int) -> float:
    """Seconds per call of ``fn`` (``warmup`` calls first, not timed)."""
    for _ in range(warmup):
        fn()
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - started) / max(1, repeats)


def grey_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size) uint8 chest-radiograph-sized stand-ins (smooth noise: content is irrelevant)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, max(1, size // 8), max(1, size // 8)), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)[:, :size, :size])


def make_context(loaded, device: torch.device, encode_batch: int) -> RunContext:
    suite = paper_suite(DataRoots(None, {}, "bench/suite_time.py: no data"))
    return RunContext(
        loaded=loaded,
        device=device,
        suite=suite,
        output=Path("/nonexistent"),
        cache_dir=Path("/nonexistent"),
        feature_cache=None,
        encode_batch_size=encode_batch,
        workers=0,
        progress=False,
    )


# ---------------------------------------------------------------------------- (a) encoding
def measure_encoding(ctx, tasks: dict, settings: dict) -> dict:
    from benchmark.families import classification, detection, segmentation
    from benchmark.families.detection import PyramidAsVector, level_indices
    from benchmark.families.segmentation import PyramidStore
    from benchmark.features import encode_batch
    from benchmark.openmmlab.segmentation_config import build_segmentor, segmentation_config

    device, encoder = ctx.device, ctx.encoder
    batch = settings["encode_batch"]
    out = {}

    task = tasks["chexpert_cls"]
    plan = classification.plan_of(task, ctx)
    upsample = classification.encoder_upsample(task, ctx, plan.crop)
    images = torch.from_numpy(grey_images(batch, plan.crop)).float().div_(255).unsqueeze(1)
    seconds = timed(
        lambda: encode_batch(encoder, images, device, upsample).cpu(),
        device,
        settings["warmup"],
        settings["encode_repeats"],
    )
    out["classification"] = {
        "images_per_s": batch / seconds,
        "batch": batch,
        "input": round(plan.crop * upsample),
        "what": f"encode_batch: {plan.crop} crop upsampled x{upsample:.3f}, global feature",
    }

    task = tasks["rsna_det"]
    plan = detection.plan_of(task, ctx)
    vector = PyramidAsVector(encoder, level_indices(encoder, plan.recipe))
    images = torch.from_numpy(grey_images(batch, plan.input_size)).float().div_(255).unsqueeze(1)
    seconds = timed(
        lambda: encode_batch(vector, images, device, None).cpu().numpy().astype(np.float16),
        device,
        settings["warmup"],
        settings["encode_repeats"],
    )
    out["detection"] = {
        "images_per_s": batch / seconds,
        "batch": batch,
        "input": plan.input_size,
        "what": "encode_batch of PyramidAsVector (stride 8/16/32 maps, fp16 on the host)",
    }

    out["segmentation"], by_batch = {}, {}
    for task_id in FAMILY_TASKS["segmentation"]:
        task = tasks[task_id]
        plan = segmentation.plan_of(task, ctx)
        eval_batch = settings["seg_eval_batch"] or 4 * plan.task.recipe.batch_size  # run_unit's eval_batch
        if eval_batch not in by_batch:
            config = segmentation_config(
                plan.task, ctx.loaded.spec, tuple(encoder.pyramid_channels), input_size=plan.input_size, seed=0
            )
            model = build_segmentor(config, loaded=ctx.loaded).to(device).eval()
            count = eval_batch * settings["encode_repeats"]
            images = grey_images(count, plan.input_size)
            calls = iter(range(10**6))

            def store(n: int) -> None:  # a fresh key each call: PyramidStore reuses a computed key
                PyramidStore.get(ctx, model, images[:n], {"bench": next(calls)}, eval_batch, "pyramids")

            for _ in range(settings["warmup"]):
                store(eval_batch)
            seconds = timed(lambda: store(count), device, 0, 1)
            PyramidStore._MEMORY.clear()
            by_batch[eval_batch] = {
                "images_per_s": count / seconds,
                "batch": eval_batch,
                "input": plan.input_size,
                "what": "PyramidStore.get: every pyramid level, fp16 on the host (val and test, once per task)",
            }
        out["segmentation"][task_id] = by_batch[eval_batch]
    return out


# ---------------------------------------------------------------------------- (b) linear probes
def measure_probes(ctx, tasks: dict, sizes: dict, settings: dict) -> dict:
    from benchmark.batched_probe import HeadData, train_linear_probes
    from benchmark.families import classification

    device, dim, views = ctx.device, int(ctx.encoder.feature_dim), ctx.suite.train_views
    cap_rows = settings["probe_rows"]
    generator = torch.Generator(device=device).manual_seed(0)

    def features(*shape) -> torch.Tensor:  # the cache stores fp16; the probe reads float32
        return torch.randn(*shape, generator=generator, device=device).half().float()

    def targets(n: int, task) -> torch.Tensor:
        if task.probe.loss == "bce":
            return (torch.rand(n, task.num_outputs, generator=generator, device=device) < 0.3).float()
        return torch.randint(task.num_outputs, (n,), generator=generator, device=device)

    warm_task = tasks["rsna_cls"]
    recipe = classification.plan_of(warm_task, ctx).probe.model_copy(update={"max_epochs": 1})
    warm = [HeadData(features(views, 96, dim), targets(96, warm_task), s) for s in SEEDS]
    train_linear_probes(warm, features(64, dim), targets(64, warm_task), 1, recipe, device=device, progress=False)

    out = {}
    for task_id in FAMILY_TASKS["classification"]:
        task = tasks[task_id]
        plan = classification.plan_of(task, ctx)
        n_val = sizes[task_id]["val"]
        val, y_val = features(n_val, dim), targets(n_val, task)
        epochs = settings["probe_epochs"]
        recipe = plan.probe.model_copy(update={"max_epochs": epochs, "patience": epochs + 1})  # no early stop
        for fraction in FRACTIONS:
            n = sizes[task_id]["train"][fraction]
            rows = min(n, cap_rows) if cap_rows else n
            if fraction == 100:  # the seeds share one training set, so one tensor (as in the harness)
                shared = features(views, rows, dim), targets(rows, task)
                heads = [HeadData(shared[0], shared[1], s) for s in SEEDS]
            else:
                heads = [HeadData(features(views, rows, dim), targets(rows, task), s) for s in SEEDS]
            sync(device)
            started = time.perf_counter()
            train_linear_probes(
                heads, val, y_val, task.num_outputs, recipe, device=device, progress=False, min_delta=plan.min_delta
            )
            sync(device)
            measured = (time.perf_counter() - started) / epochs
            out[f"{task_id}@{fraction}"] = {
                "n_train": n,
                "rows_timed": rows,
                "n_val": n_val,
                "heads": len(heads),
                "batch": int(plan.probe.batch_size),
                "epoch_s_measured": measured,
                # rows beyond the timed sample scale linearly (validation scaled with them: an over-estimate)
                "epoch_s": measured * n / rows,
            }
            del heads
        del val, y_val
    return out


# ---------------------------------------------------------------------------- (c) segmentation
def seg_steps(n: int, batch: int) -> int:
    """Training steps of one epoch in run_unit (a lone last image is folded into the next epoch)."""
    return n // batch + (1 if n % batch >= 2 or n == 1 else 0)


def measure_segmentation(ctx, tasks: dict, settings: dict) -> dict:
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import set_random_seed

    from benchmark.families import segmentation
    from benchmark.families.segmentation import (
        PyramidStore,
        augment_batch,
        to_input,
        train_step,
        validation_loss,
    )
    from benchmark.openmmlab.segmentation_config import build_segmentor, segmentation_config

    device, encoder = ctx.device, ctx.encoder
    out = {}
    for task_id in FAMILY_TASKS["segmentation"]:
        plan = segmentation.plan_of(tasks[task_id], ctx)
        recipe, size = plan.task.recipe, plan.input_size
        config = segmentation_config(
            plan.task,
            ctx.loaded.spec,
            tuple(encoder.pyramid_channels),
            input_size=size,
            seed=0,
            max_epochs=plan.max_epochs,
            patience=plan.patience,
            min_delta=plan.min_delta,
        )
        batch = int(config["train_loop"]["batch_size"])
        eval_batch = max(batch, 4 * batch)  # run_unit's
        set_random_seed(0)
        model = build_segmentor(config, loaded=ctx.loaded).to(device)
        optim_wrapper = build_optim_wrapper(model, copy.deepcopy(config["optim_wrapper"]))
        images = grey_images(batch, size, seed=1)
        masks = np.zeros((batch, size, size), dtype=bool)
        masks[:, size // 4 : size // 2, size // 5 : size // 3] = True  # a finding in every image
        ids = [f"stand-in-{k}" for k in range(batch)]
        epoch = iter(range(10**6))

        def one_step() -> None:  # the body of run_unit's training loop, for one batch
            model.train()
            augmented, augmented_masks = augment_batch(
                images, masks, np.arange(batch), ids, recipe.augmentation, 0, next(epoch)
            )
            float(train_step(model, optim_wrapper, augmented, augmented_masks, device).detach())  # read every step

        step_s = timed(one_step, device, settings["warmup"], settings["seg_steps"])

        # validation: the decoder on cached pyramids (run_unit's val_loss), per image
        n_val = settings["seg_val_images"] or eval_batch
        chunk = min(eval_batch, n_val)
        model.eval()
        with torch.inference_mode():
            probe = model.extract_feat(to_input(images[:1], device))
        rng = np.random.default_rng(2)
        levels = [
            rng.standard_normal((n_val, *level.shape[1:]), dtype=np.float32).astype(np.float16) for level in probe
        ]
        store = PyramidStore(levels, "stand-in", "memory (stand-in)")
        store.make_resident(device)
        val_masks = np.repeat(masks[:1], n_val, axis=0)

        def validation() -> None:
            validation_loss(model, lambda index: store.batch(index, device), val_masks, chunk, batch, device)

        val_s = timed(validation, device, 1, settings["val_repeats"])
        out[task_id] = {
            "batch": batch,
            "input": size,
            "step_s": step_s,
            "val_s_per_image": val_s / n_val,
            "val_images_timed": n_val,
            "val_chunk": chunk,
        }
    return out


# ---------------------------------------------------------------------------- (d) detection
class _StandIns:
    """In-memory stand-ins filled into the harness's own ``SplitPyramids`` / ``Targets`` classes
    (their ``levels`` / ``batch`` methods run unchanged): random fp16 maps held on the device, 0-3
    random boxes per image."""

    @staticmethod
    def pyramids(ctx, ids: list[str], shapes, seed: int):
        from benchmark.families.detection import SplitPyramids

        dim = sum(c * h * w for c, h, w in shapes)
        pyramids = SplitPyramids.__new__(SplitPyramids)
        pyramids.ctx, pyramids.ids, pyramids.shapes, pyramids.array = ctx, ids, shapes, None
        generator = torch.Generator(device=ctx.device).manual_seed(seed)
        pyramids.resident = torch.randn(len(ids), dim, generator=generator, device=ctx.device).half()
        pyramids.resident_row = {image_id: k for k, image_id in enumerate(ids)}
        return pyramids

    @staticmethod
    def targets(ids: list[str], size: int, seed: int):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        from benchmark.families.detection import Targets

        rng = np.random.default_rng(seed)
        targets = Targets.__new__(Targets)
        targets.original, targets.geometry, targets.shape, targets.samples = {}, {}, {}, {}
        for image_id in ids:
            count = int(rng.integers(0, 4))
            xy = rng.uniform(0, 0.7 * size, (count, 2))
            boxes = np.concatenate([xy, xy + rng.uniform(0.05 * size, 0.3 * size, (count, 2))], axis=1)
            targets.original[image_id], targets.geometry[image_id] = boxes, (1.0, 1.0, 0, 0)
            targets.shape[image_id] = (size, size)
            meta = dict(
                img_id=image_id,
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0),
            )
            sample = DetDataSample(metainfo=meta)
            sample.gt_instances = InstanceData(
                bboxes=torch.as_tensor(boxes, dtype=torch.float32), labels=torch.zeros(count, dtype=torch.long)
            )
            targets.samples[image_id] = sample
        targets.on_device, targets.device = targets.samples, torch.device("cpu")
        return targets


def measure_detection(ctx, tasks: dict, settings: dict) -> dict:
    from benchmark.det_metrics import detection_metrics
    from benchmark.families import detection
    from benchmark.families.detection import build_model, level_indices, level_shapes, model_config, predict
    from benchmark.families.detection import train_detector
    from benchmark.results import UnitId

    device = ctx.device
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # as run_unit does on CPU for the neck and head
    try:
        out: dict = {"step_s": {}}
        task = tasks["rsna_det"]  # objectcxr_det has the same model (one class, same recipe shapes)
        plan = detection.plan_of(task, ctx)
        recipe, size = plan.recipe, plan.input_size
        shapes = level_shapes(ctx.encoder, level_indices(ctx.encoder, recipe), size, device)
        n_val = settings["det_val_images"]
        val_ids = [f"val-{k}" for k in range(n_val)]
        val_pyramids, val_targets = _StandIns.pyramids(ctx, val_ids, shapes, 1), _StandIns.targets(val_ids, size, 1)
        eval_batch = max(16, recipe.batch_size)  # train_detector's validation batch (and the test batch)

        def validation(model) -> None:  # what train_detector does after each epoch
            preds, _ = predict(model, val_pyramids, val_targets, val_ids, eval_batch, with_loss=True)
            detection_metrics(val_targets.original, preds, val_ids, recipe.iou_thresholds)

        for fraction in (1, 100):  # batch 8 at 1%, 16 at 10% and 100%
            batch = recipe.batch_size_for(fraction)
            cfg = model_config(task, recipe, ctx, UnitId(task=task.id, fraction=fraction, seed=0), size)
            cfg.train_loop.max_epochs = 1
            model = build_model(cfg, ctx, 0)
            steps = settings["det_steps"]
            train_ids = [f"train-{k}" for k in range(batch * steps)]
            train = (_StandIns.pyramids(ctx, train_ids, shapes, 2), _StandIns.targets(train_ids, size, 2), train_ids)
            warm_ids = train_ids[: batch * max(1, settings["warmup"])]
            one = val_ids[:1]
            train_detector(
                model, cfg, recipe.iou_thresholds, (train[0], train[1], warm_ids), (val_pyramids, val_targets, one),
                progress=False, desc="warm-up",
            )  # fmt: skip
            sync(device)
            started = time.perf_counter()
            train_detector(
                model, cfg, recipe.iou_thresholds, train, (val_pyramids, val_targets, one), progress=False, desc="timed"
            )
            sync(device)
            epoch_s = time.perf_counter() - started
            # the one-image validation inside the timed epoch is left in (a few ms)
            out["step_s"][batch] = epoch_s / steps
            if "val_s_per_image" not in out:
                validation(model)  # warm-up
                out["val_s_per_image"] = timed(lambda: validation(model), device, 0, 1) / n_val
                out["test_s_per_image"] = (
                    timed(lambda: predict(model, val_pyramids, val_targets, val_ids, eval_batch), device, 0, 1) / n_val
                )
        out.update(input=size, val_images_timed=n_val, eval_batch=eval_batch)
        return out
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- projection
def project(sizes: dict, caps: dict, typical: dict, enc: dict, probes: dict, seg: dict, det: dict, views: int):
    """Rows (phase, task, units, per-unit seconds at the cap / typical, suite seconds at the cap / typical)."""
    rows = []

    def epochs(family: str) -> tuple[int, int | None]:
        return caps[family][0], typical.get(family, {}).get("epochs")

    for task_id in FAMILY_TASKS["classification"]:
        s = sizes[task_id]
        seconds = (s["train"][100] * views + s["val"] + s["test"]) / enc["classification"]["images_per_s"]
        rows.append(("encode", task_id, 1, seconds, seconds, "features: train x views + val + test, once per task"))
    for task_id in FAMILY_TASKS["segmentation"]:
        s = sizes[task_id]
        seconds = (s["val"] + s["test"]) / enc["segmentation"][task_id]["images_per_s"]
        rows.append(("encode", task_id, 1, seconds, seconds, "val + test pyramids, once per task"))
    for task_id in FAMILY_TASKS["detection"]:
        s = sizes[task_id]
        seconds = (s["train"][100] + s["val"] + s["test"]) / enc["detection"]["images_per_s"]
        rows.append(("encode", task_id, 1, seconds, seconds, "train + val + test maps, once per task"))

    cap, typ = epochs("classification")
    for task_id in FAMILY_TASKS["classification"]:
        # one group of 3 seeds per fraction trains as one; per unit = the task's 3 groups over its 9 units
        epoch = sum(probes[f"{task_id}@{f}"]["epoch_s"] for f in FRACTIONS) / (len(FRACTIONS) * len(SEEDS))
        rows.append(("probe", task_id, 9, epoch * cap, epoch * typ if typ else None, "3 seeds batched per fraction"))

    cap, typ = epochs("segmentation")
    for task_id in FAMILY_TASKS["segmentation"]:
        s, m = sizes[task_id], seg[task_id]
        val = s["val"] * m["val_s_per_image"]
        test = s["test"] * m["val_s_per_image"]
        epoch = [seg_steps(s["train"][f], m["batch"]) * m["step_s"] + val for f in FRACTIONS]
        upper = sum(e * cap + test for e in epoch) / 3
        typical_s = sum(e * typ + test for e in epoch) / 3 if typ else None
        rows.append(("seg", task_id, 9, upper, typical_s, "encoder on augmented train images + U-Net, every epoch"))

    cap, typ = epochs("detection")
    for task_id in FAMILY_TASKS["detection"]:
        s = sizes[task_id]
        val, test = s["val"] * det["val_s_per_image"], s["test"] * det["test_s_per_image"]
        epoch = [
            math.ceil(s["train"][f] / (8 if f <= 1 else 16)) * det["step_s"][8 if f <= 1 else 16] + val
            for f in FRACTIONS
        ]
        upper = sum(e * cap + test for e in epoch) / 3
        typical_s = sum(e * typ + test for e in epoch) / 3 if typ else None
        rows.append(("det", task_id, 9, upper, typical_s, "YOLOv3 neck + head on cached maps"))
    return [
        {
            "phase": phase,
            "task": task,
            "units": units,
            "per_unit_s_cap": upper,
            "per_unit_s_typical": typical_s,
            "suite_s_cap": upper * units,
            "suite_s_typical": None if typical_s is None else typical_s * units,
            "note": note,
        }
        for phase, task, units, upper, typical_s, note in rows
    ]


# ---------------------------------------------------------------------------- report
def fmt(seconds: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if seconds is None else f"{seconds / scale:,.{digits}f}"


def percent(part: float, whole: float) -> str:
    value = 100 * part / whole if whole else 0.0
    return "< 0.1%" if 0 < value < 0.1 else f"{value:.1f}%"


def markdown(report: dict) -> str:
    device, rows = report["device"], report["projection"]
    lines = [
        f"Paper suite, `{report['encoder']}`, measured on {device} ({report['date']}; "
        f"load average at start {report['load_average']}):",
        "",
        "| phase | task | units | per unit, s (epoch cap) | per unit, s (typical) | suite, min (epoch cap) "
        "| suite, min (typical) | measured on |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        per = "1 (per task)" if r["phase"] == "encode" else str(r["units"])
        lines.append(
            f"| {r['phase']} | {r['task']} | {per} | {fmt(r['per_unit_s_cap'])} | {fmt(r['per_unit_s_typical'])} "
            f"| {fmt(r['suite_s_cap'], 60)} | {fmt(r['suite_s_typical'], 60)} | {device} |"
        )
    for phase in ("encode", "probe", "seg", "det"):
        part = [r for r in rows if r["phase"] == phase]
        cap = sum(r["suite_s_cap"] for r in part)
        typ = None if any(r["suite_s_typical"] is None for r in part) else sum(r["suite_s_typical"] for r in part)
        units = "7 tasks" if phase == "encode" else str(sum(r["units"] for r in part))
        lines.append(f"| **{phase}, all** | | {units} | | | {fmt(cap, 60)} | {fmt(typ, 60)} | {device} |")
    total = report["total_min"]
    units = sum(r["units"] for r in rows if r["phase"] != "encode")
    lines.append(f"| **total** | | {units} | | | **{fmt(total['cap'])}** | **{fmt(total['typical'])}** | {device} |")
    shares = []
    for phase in ("encode", "probe", "seg", "det"):
        cap = sum(r["suite_s_cap"] for r in rows if r["phase"] == phase) / 60
        typ = [r["suite_s_typical"] for r in rows if r["phase"] == phase]
        share = f"{phase} {percent(cap, total['cap'])}"
        if total["typical"] and None not in typ:
            share += f" / {percent(sum(typ) / 60, total['typical'])}"
        shares.append(share)
    lines.append("")
    lines.append("Share of the total (epoch cap / typical): " + ", ".join(shares) + ".")
    if report["device"].startswith("cuda"):
        if total["cap"] < 30:
            verdict = "within it even at the epoch cap"
        elif total["typical"] is not None and total["typical"] < 30:
            verdict = "above it at the epoch cap, within it under the typical assumption"
        else:
            verdict = "above it"
        lines.append(
            f"Target < 30 min on one GPU: {fmt(total['cap'])} min at the epoch cap, {fmt(total['typical'])} min "
            f"typical: {verdict}."
        )
    else:
        lines.append("The < 30 min target is for one H200; these figures were not measured on a GPU.")
    caps, typical = report["epochs"]["cap"], report["epochs"]["typical"]
    lines += [
        "",
        "Epochs: cap = every head runs to its recipe's cap ("
        + ", ".join(f"{f} {c[0]}" for f, c in caps.items())
        + "), an upper bound. Typical = ASSUMPTION, not measured: "
        + (
            "; ".join(
                f"{f} {t['epochs']} (median demo best epoch / cap {t['median_best_ratio']} over {t['demo_units']} "
                f"demo units, x {caps[f][0]} + patience {caps[f][1]})"
                for f, t in typical.items()
            )
            if typical
            else "no demo results found, column left out"
        )
        + "".join(f"; {f}: no demo results found, left out" for f in caps if typical and f not in typical)
        + ".",
        "",
        "Measured: " + "; ".join(report["measured_lines"]) + ".",
    ]
    return "\n".join(lines)


def measured_lines(enc: dict, probes: dict, seg: dict, det: dict) -> list[str]:
    lines = [
        f"encode classification {enc['classification']['images_per_s']:,.1f} images/s "
        f"(input {enc['classification']['input']}, batch {enc['classification']['batch']})",
        f"encode detection maps {enc['detection']['images_per_s']:,.1f} images/s (batch {enc['detection']['batch']})",
    ]
    for task_id, e in enc["segmentation"].items():
        lines.append(f"encode {task_id} pyramids {e['images_per_s']:,.1f} images/s (batch {e['batch']})")
    for key, p in probes.items():
        scaled = "" if p["rows_timed"] == p["n_train"] else f", timed on {p['rows_timed']:,} rows"
        lines.append(f"probe {key}% {p['epoch_s']:.3f} s/epoch for 3 heads (n {p['n_train']:,}{scaled})")
    for task_id, m in seg.items():
        lines.append(
            f"{task_id} {m['step_s']:.3f} s/step (batch {m['batch']}), validation {1000 * m['val_s_per_image']:.1f} "
            "ms/image"
        )
    lines.append(
        "detection "
        + ", ".join(f"{s:.3f} s/step (batch {b})" for b, s in det["step_s"].items())
        + f", validation {1000 * det['val_s_per_image']:.1f} ms/image, test {1000 * det['test_s_per_image']:.1f} "
        "ms/image"
    )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="random:resnet50")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--quick", action="store_true", help="a small sample: fewer steps, probes on <= 4,000 rows")
    parser.add_argument("--json", type=Path, default=None, help="write the measurements and projection here")
    parser.add_argument("--batch-size", type=int, default=None, help="encoder batch (default: the CLI's, 256 / 32)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (segmentation, detection)")
    parser.add_argument("--probe-rows", type=int, default=None, help="cap on the probe rows timed (0: real sizes)")
    parser.add_argument("--probe-epochs", type=int, default=None, help="timed probe epochs per group")
    parser.add_argument(
        "--typical-from",
        default=str(ROOT / "submissions"),
        help="folder of submissions whose demo results give the typical epochs ('' to leave the column out)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.typical_from and not Path(args.typical_from).is_dir():
        print(
            f"error: --typical-from {args.typical_from}: no such folder (a folder of submissions whose "
            "results/demo/ hold demo results; pass '' to leave the typical column out)",
            file=sys.stderr,
        )
        return 2
    cuda = device.type == "cuda"
    batch = args.batch_size or (256 if cuda else 32)
    if args.quick and not cuda and not args.batch_size:
        batch = 4  # a CPU sample: throughput per image barely depends on the batch there
    settings = {
        "encode_batch": batch,
        "encode_repeats": 2 if args.quick else (10 if cuda else 3),
        "warmup": 1 if args.quick else 2,
        "seg_steps": args.steps or (1 if args.quick else (30 if cuda else 4)),
        "det_steps": args.steps or (2 if args.quick else (50 if cuda else 6)),
        "val_repeats": 1 if args.quick else 3,
        "seg_eval_batch": (4 if args.quick and not cuda else None),
        "seg_val_images": (8 if args.quick and not cuda else None),
        "det_val_images": 16 if args.quick else 128,
        "probe_rows": (
            args.probe_rows if args.probe_rows is not None else (4000 if args.quick else (0 if cuda else 20000))
        ),
        "probe_epochs": args.probe_epochs or (2 if args.quick else 3),
    }
    started = time.perf_counter()
    loaded = load_encoder(args.encoder)
    loaded.encoder.to(device).eval()
    ctx = make_context(loaded, device, batch)
    tasks = all_tasks()
    sizes = {t: split_sizes(tasks[t]) for ts in FAMILY_TASKS.values() for t in ts}
    caps = family_caps(ctx, tasks)
    typical = typical_epochs(args.typical_from, caps)
    where = device_description(device)
    print(f"{args.encoder} on {where}; settings {settings}", file=sys.stderr, flush=True)

    enc = measure_encoding(ctx, tasks, settings)
    print(f"encoding done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    probes = measure_probes(ctx, tasks, sizes, settings)
    print(f"probes done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    seg = measure_segmentation(ctx, tasks, settings)
    print(f"segmentation done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    det = measure_detection(ctx, tasks, settings)
    print(f"detection done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    rows = project(sizes, caps, typical, enc, probes, seg, det, ctx.suite.train_views)
    total_cap = sum(r["suite_s_cap"] for r in rows) / 60
    typicals = [r["suite_s_typical"] for r in rows]
    total_typ = None if None in typicals else sum(typicals) / 60
    report = {
        "encoder": args.encoder,
        "device": where,
        "date": dt.date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "git": git_state(),
        "load_average": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "settings": settings,
        "sizes": {k: {**v, "train": {str(f): n for f, n in v["train"].items()}} for k, v in sizes.items()},
        "epochs": {"cap": caps, "typical": typical},
        "measured": {
            "encoding": enc,
            "probes": probes,
            "segmentation": seg,
            "detection": {**det, "step_s": {str(b): s for b, s in det["step_s"].items()}},
        },
        "projection": rows,
        "total_min": {"cap": total_cap, "typical": total_typ},
        "measured_lines": measured_lines(enc, probes, seg, det),
        "bench_seconds": time.perf_counter() - started,
        "not_counted": "image decoding; zero-shot units; result writing and metric computation at test time",
    }
    print(markdown(report))
    print(f"\n(bench wall time {report['bench_seconds']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
