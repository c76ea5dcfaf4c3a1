"""The unit grid (task x fraction x seed): planning, sharding, resume and execution."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tqdm.auto import tqdm

from .atomic import remove_stale_temp_files
from .context import RunContext
from .datasets import get_dataset
from .errors import BenchmarkError, DatasetNotFoundError
from .families import family_module
from .protocol_versions import version_problem
from .results import Result, UnitId, read_result, unit_paths, write_result
from .task_data import TaskData, limited, load_task_data, unit_train_ids
from .task_spec import TaskSpec
from .unit_outcome import build_result
from .unit_plan import plan_fingerprint


def plan_units(tasks: list[TaskSpec], fractions: list[int] | None, seeds: list[int]) -> list[tuple[TaskSpec, UnitId]]:
    units = []
    for task in tasks:
        for fraction in fractions or task.fractions:
            if fraction not in task.fractions:
                raise BenchmarkError(
                    f"--fractions {fraction}: {task.id} has no {fraction}% label fraction "
                    f"(it has {', '.join(map(str, task.fractions))})"
                )
            for seed in seeds:
                units.append((task, UnitId(task=task.id, fraction=fraction, seed=seed)))
    return units


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0-based i) -> (i, n); ``None`` -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise BenchmarkError(f"--shard expects i/n with 0 <= i < n (for example 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise BenchmarkError(f"--shard {text}: need 0 <= i < n")
    return index, count


def shard_units(units: list, index: int, count: int) -> list:
    """Round-robin split of the grid; every shard sees the same grid order."""
    return units[index::count]


def check_datasets(ctx: RunContext, tasks: list[TaskSpec]) -> list[str]:
    """Messages for every missing dataset (checked before any work starts)."""
    messages = []
    for name in dict.fromkeys(t.dataset for t in tasks):
        adapter = get_dataset(name)
        if not adapter.is_present(ctx.suite.data_roots):
            messages.append(adapter.missing_message(ctx.suite.data_roots))
    return messages


def nearest_existing(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists."""
    path = Path(path).expanduser()
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_writable_folder(path: Path, option: str) -> None:
    """Refuse, before any work, a folder (or the nearest existing ancestor it would be
    created in) that is a file or that this user cannot write."""
    path = Path(path).expanduser()
    existing = nearest_existing(path)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise BenchmarkError(f"{option} {path} {where}, not a folder; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" (it would be created in {existing})"
        raise BenchmarkError(
            f"{option} {path} is not writable for this user{where}; choose another {option} or fix its permissions"
        )


def _splits_read(task: TaskSpec) -> tuple[str, ...]:
    return ("val", "test") if task.family == "zeroshot" else ("train", "val", "test")


def images_read(ctx: RunContext, data: TaskData, units: list[UnitId]) -> dict[str, list[str]]:
    """Per split, the ids whose image files ``units`` of one task read (under --limit only
    the first N of a split; of train only the units' training images)."""
    out = {}
    for split in _splits_read(data.task):
        if split == "train":
            ids = [i for u in units for i in unit_train_ids(data, u.fraction, u.seed, ctx.limit)]
        else:
            ids = limited(data.split_ids[split], ctx.limit)
        out[split] = list(dict.fromkeys(ids))
    return out


def check_images(ctx: RunContext, todo: list[tuple[TaskSpec, UnitId]], task_data: dict[str, TaskData]) -> None:
    """Before any encoding: every image file the units will read exists and has a complete
    header and end (:mod:`benchmark.image_headers`: empty, foreign and truncated files; about
    a second per 10,000 files), and the first image of each split decodes (a missing
    pixel-data handler shows there). A file corrupt only in its middle still stops the run
    when it is decoded, with the same one-line :class:`~benchmark.errors.ImageDecodeError`."""
    from .errors import ImageDecodeError
    from .image_headers import header_problems
    from .images import read_grey

    by_task: dict[str, list[UnitId]] = {}
    for task, unit in todo:
        by_task.setdefault(task.id, []).append(unit)
    for task_id, units in by_task.items():
        data = task_data[task_id]
        if "path" not in data.records.columns:
            continue
        for split, ids in images_read(ctx, data, units).items():
            paths = data.records.loc[ids, "path"].astype(str).tolist()
            missing = [p for p in paths if not os.path.exists(p)]
            if missing:
                raise BenchmarkError(
                    f"{task_id}: {len(missing)} of the {len(paths)} {split} image file(s) this run reads "
                    f"are missing, e.g. {', '.join(missing[:3])} (checked before encoding; "
                    f"is the dataset at {data.adapter.folder} complete?)"
                )
            bad = header_problems(paths)
            if bad:
                (path, problem), others = bad[0], [p for p, _ in bad[1:4]]
                more = f"; {len(bad) - 1} more of them, e.g. {', '.join(others)}" if len(bad) > 1 else ""
                raise ImageDecodeError(
                    path,
                    f"{problem} (checked before encoding: {len(bad)} of the {len(paths)} {split} "
                    f"image file(s) of {task_id} fail{more})",
                )
            if paths:
                read_grey(paths[0])


def feature_cache_bytes(
    ctx: RunContext, todo: list[tuple[TaskSpec, UnitId]], task_data: dict[str, TaskData]
) -> tuple[int, list[str]]:
    """Bytes the feature-cache entries of ``todo`` still have to write, and a line per split:
    classification features (rows not yet done x views x feature dim x 2, fp16), detection
    pyramids (rows not yet done x the levels' values x 2) and segmentation val/test pyramids
    that go to disk (larger than its memory budget, not cached yet). The pyramid sizes take
    one forward pass of a blank image at the task's input size."""
    import numpy as np

    from .families import detection, segmentation
    from .families.classification import SplitFeatures, encoder_upsample, preprocess_spec

    if ctx.feature_cache is None:
        return 0, []
    total, lines = 0, []
    by_task: dict[str, list[UnitId]] = {}
    for task, unit in todo:
        by_task.setdefault(task.id, []).append(unit)
    for task_id, units in by_task.items():
        data = task_data[task_id]
        if data.task.family == "detection":
            size, split_lines = detection.pyramid_disk_bytes(ctx, data, units)
            total, lines = total + size, lines + split_lines
        elif data.task.family == "segmentation":
            for split in ("val", "test"):
                size = segmentation.pyramid_disk_bytes(ctx, data, split, limited(data.split_ids[split], ctx.limit))
                if size:
                    total += size
                    lines.append(f"{task_id} {split} pyramids: {size / 1e6:,.1f} MB")
    dim = int(getattr(ctx.encoder, "feature_dim", 0) or 0)
    if dim <= 0:
        return total, lines
    for task_id, units in by_task.items():
        if task_data[task_id].task.family != "classification":
            continue
        data = task_data[task_id]
        spec = preprocess_spec(data.task, ctx)
        upsample = encoder_upsample(data.task, ctx, spec.crop)
        for split, ids in images_read(ctx, data, units).items():
            split_features = SplitFeatures(ctx, data, split, spec, upsample)
            rows = split_features.rows(ids)
            done_path = ctx.feature_cache.entry(ctx.feature_cache.key(split_features.key_parts())) / "done.npy"
            if done_path.is_file():
                done = np.load(done_path)
                rows = [r for r in rows if r >= len(done) or not done[r]]
            views = split_features.plan.count
            size = len(rows) * views * dim * 2
            if size:
                total += size
                lines.append(
                    f"{task_id} {split}: {len(rows):,} images x {views} view(s) x {dim} dims x 2 B = "
                    f"{size / 1e6:,.1f} MB"
                )
    return total, lines


def check_disk(ctx: RunContext, todo: list[tuple[TaskSpec, UnitId]], task_data: dict[str, TaskData]) -> None:
    """Refuse a run whose feature-cache entries clearly do not fit on the cache's disk
    (estimate: README "Feature cache"; only what is not cached yet; no safety margin)."""
    if ctx.feature_cache is None:
        return
    need, lines = feature_cache_bytes(ctx, todo, task_data)
    if not need:
        return
    root = Path(ctx.feature_cache.root)
    free = shutil.disk_usage(nearest_existing(root)).free
    if need > free:
        raise BenchmarkError(
            f"not enough free disk for the feature cache: this run writes about {need / 1e6:,.1f} MB to {root} "
            f"but only {free / 1e6:,.1f} MB are free ({'; '.join(lines[:6])}{'; ...' if len(lines) > 6 else ''}). "
            "Free some space, point --cache-dir at a larger disk, or run fewer tasks."
        )


def encoder_owner(encoder: dict) -> tuple:
    """What makes two results come from the same encoder: checkpoint sha256 and architecture."""
    return (encoder.get("sha256"), encoder.get("arch"))


def check_single_encoder(ctx: RunContext) -> None:
    """One results folder holds one encoder: refuse to add ANY unit (new or existing) to a
    folder that already holds another encoder's results, since summaries and submissions
    average everything in it."""
    mine = encoder_owner(ctx.encoder_identity())
    foreign = []
    for path in sorted(Path(ctx.output).glob("*/*.json")):
        try:
            other = read_result(path)
        except Exception:
            continue
        if encoder_owner(other.encoder) != mine:
            foreign.append((path, other.encoder))
    if foreign:
        path, encoder = foreign[0]
        raise BenchmarkError(
            f"{ctx.output} already holds results of a different encoder ({len(foreign)} file(s), e.g. {path}: "
            f"{encoder.get('spec')}, sha256 {str(encoder.get('sha256'))[:12]}, {encoder.get('arch')}); "
            f"this run's encoder is {ctx.loaded.spec} (sha256 {str(ctx.loaded.sha256)[:12]}, {ctx.encoder.arch}). "
            "One results folder holds one encoder: "
            "use another --output (--overwrite only replaces units of the same encoder)."
        )


def execution_groups(
    ctx: RunContext, todo: list[tuple[TaskSpec, UnitId]], task_data: dict[str, TaskData]
) -> list[tuple[TaskSpec, list[UnitId]]]:
    """The units to run, in groups that run together (in the order of each group's first
    unit): a family with ``group_key(ctx, data, unit)`` groups the units of one task with
    the same key (classification: the seeds of a label fraction, whose probes train
    batched); every other unit is a group of its own."""
    groups: dict[tuple, tuple[TaskSpec, list[UnitId]]] = {}
    for task, unit in todo:
        key_of = getattr(family_module(task.family), "group_key", None)
        key = (task.id, key_of(ctx, task_data[task.id], unit) if key_of else unit)
        groups.setdefault(key, (task, []))[1].append(unit)
    return list(groups.values())


def unit_key(module, ctx: RunContext, data: TaskData, unit: UnitId) -> str:
    """The resume key of a unit: the parts every family shares (``RunContext.unit_key``: task,
    suite, encoder, manifest, image bytes, unit, flags), the family's effective plan
    (benchmark/unit_plan.py) and the family's own ``key_parts`` (training ids, preprocessing,
    text side ...). Computed before the unit runs and stored in its result, so a rerun reuses a
    finished unit exactly when nothing that determines it has changed."""
    plan = plan_fingerprint(module.plan_of(data.task, ctx))
    return ctx.unit_key(data, unit, family=data.task.family, plan=plan, **module.key_parts(ctx, data, unit))


def run_group(module, ctx: RunContext, data: TaskData, units: list[UnitId]):
    """(unit, result, predictions) of each unit of a group as it finishes; ``unit_total`` in
    each result's timings (a batched group's shared time divided among its units). The family
    computes (:class:`~benchmark.unit_outcome.UnitOutcome`); the result is built here."""
    if hasattr(module, "run_group"):
        outcomes = module.run_group(ctx, data, units)
    else:
        outcomes = _one_by_one(module, ctx, data, units)
    for unit, outcome in outcomes:
        result = build_result(ctx, data.task, unit, outcome, unit_key(module, ctx, data, unit))
        yield unit, result, outcome.predictions


def run_one(ctx: RunContext, data: TaskData, unit: UnitId) -> tuple[Result, object]:
    """(result, predictions) of one unit, as the runner would write them (tests, bench scripts)."""
    module = family_module(data.task.family)
    for _, result, predictions in run_group(module, ctx, data, [unit]):
        return result, predictions
    raise BenchmarkError(f"{unit.name}: the family returned no result")


def _one_by_one(module, ctx: RunContext, data: TaskData, units: list[UnitId]):
    for unit in units:
        started = time.perf_counter()
        outcome = module.run_unit(ctx, data, unit)
        outcome.timings["unit_total"] = time.perf_counter() - started
        yield unit, outcome


def run_units(
    ctx: RunContext, units: list[tuple[TaskSpec, UnitId]], *, overwrite: bool = False, log=print
) -> list[Result]:
    """Run the units not finished yet. A finished unit is reused only when it was produced
    under its family's current protocol version (:mod:`benchmark.protocol_versions`; checked
    first, so a result of an older protocol is refused with its version even where its unit
    key would also differ) and its unit key matches; other finished units stop the run (use
    another --output, or --overwrite). Before any encoder work: the results folder and the
    cache are writable, stale temporary files of killed writes are removed from the results
    folder, every image file the units read exists and is complete at both ends (the first
    of each split decodes), and
    the feature cache's new entries fit on its disk."""
    check_writable_folder(ctx.output, "--output")
    check_writable_folder(ctx.cache_dir, "--cache-dir")
    removed = remove_stale_temp_files(ctx.output)
    if removed:
        log(f"removed {len(removed)} stale temporary file(s) of killed writes in {ctx.output}")
    check_single_encoder(ctx)
    task_data: dict[str, TaskData] = {}
    results: list[Result] = []
    conflicts = []
    outdated = []
    todo = []
    for task, unit in units:
        if task.id not in task_data:
            task_data[task.id] = load_task_data(task, ctx.suite, ctx.cache_dir)
        data = task_data[task.id]
        json_path, _ = unit_paths(ctx.output, unit)
        if json_path.is_file() and not overwrite:
            try:
                existing = read_result(json_path)
            except Exception:
                existing = None  # unreadable (killed mid-write is impossible: writes are atomic)
            other_protocol = version_problem(str(json_path), existing) if existing is not None else None
            if other_protocol:
                outdated.append(other_protocol)
                continue
            module = family_module(task.family)
            if existing is not None and existing.unit_key == unit_key(module, ctx, data, unit):
                results.append(existing)
                continue
            if existing is not None:
                conflicts.append(json_path)
                continue
        todo.append((task, unit))
    if outdated:
        raise BenchmarkError(
            f"{len(outdated)} result file(s) in {ctx.output} were produced under another protocol version and are "
            "never reused:\n  "
            + "\n  ".join(outdated[:10])
            + ("\n  ..." if len(outdated) > 10 else "")
            + "\nUse another --output, or --overwrite to rerun them here."
        )
    if conflicts:
        listing = "\n  ".join(str(p) for p in conflicts[:10])
        raise BenchmarkError(
            f"{len(conflicts)} result file(s) in {ctx.output} were produced with a different encoder, "
            f"split or configuration:\n  {listing}\nUse another --output, or --overwrite to replace them."
        )
    if todo:
        check_images(ctx, todo, task_data)
        check_disk(ctx, todo, task_data)
    if results:
        log(f"resume: {len(results)} of {len(units)} units already finished in {ctx.output}; running {len(todo)}")
    number = 0
    for task, group in execution_groups(ctx, todo, task_data):
        module = family_module(task.family)
        first, last = number + 1, number + len(group)
        if ctx.progress:
            if len(group) == 1:
                tqdm.write(f"[{first}/{len(todo)}] {group[0].task} {group[0].fraction}% seed {group[0].seed}")
            else:
                tqdm.write(
                    f"[{first}-{last}/{len(todo)}] {task.id} {group[0].fraction}% seeds "
                    f"{', '.join(str(u.seed) for u in group)} (probes trained batched)"
                )
        for unit, result, predictions in run_group(module, ctx, task_data[task.id], group):
            number += 1
            path = write_result(ctx.output, result, predictions)
            best = result.training.get("best_epoch")
            detail = f"best epoch {best}, " if best is not None else ""
            log(
                f"[{number}/{len(todo)}] {unit.task} {unit.fraction}% seed {unit.seed}: {result.metric} "
                f"{100 * result.value:.2f} ({detail}{result.timings['unit_total']:.1f} s) -> {path}"
            )
            results.append(result)
    return results


__all__ = [
    "plan_units",
    "parse_shard",
    "shard_units",
    "check_datasets",
    "run_units",
    "run_one",
    "unit_key",
    "execution_groups",
    "DatasetNotFoundError",
    "Path",
]
