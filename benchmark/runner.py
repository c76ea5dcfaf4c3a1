"""The unit grid (task x fraction x seed): planning, sharding, resume and execution."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from .context import RunContext
from .datasets import get_dataset
from .errors import BenchmarkError, DatasetNotFoundError
from .families import family_module
from .results import Result, UnitId, read_result, unit_paths, write_result
from .task_data import TaskData, load_task_data
from .task_spec import TaskSpec


def plan_units(tasks: list[TaskSpec], fractions: list[int] | None, seeds: list[int]) -> list[tuple[TaskSpec, UnitId]]:
    units = []
    for task in tasks:
        for fraction in fractions or task.fractions:
            if fraction not in task.fractions:
                raise BenchmarkError(f"{task.id} has no {fraction}% label fraction (it has {task.fractions})")
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
            f"{encoder.get('spec')}, sha256 {str(encoder.get('sha256'))[:12]}, {encoder.get('arch')}); this run's encoder is "
            f"{ctx.loaded.spec} (sha256 {str(ctx.loaded.sha256)[:12]}, {ctx.encoder.arch}). One results folder holds one encoder: "
            "use another --output (--overwrite only replaces units of the same encoder)."
        )


def run_units(ctx: RunContext, units: list[tuple[TaskSpec, UnitId]], *, overwrite: bool = False, log=print) -> list[Result]:
    check_single_encoder(ctx)
    task_data: dict[str, TaskData] = {}
    results: list[Result] = []
    conflicts = []
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
            module = family_module(task.family)
            if existing is not None and existing.unit_key == module.expected_unit_key(ctx, data, unit):
                results.append(existing)
                continue
            if existing is not None:
                conflicts.append(json_path)
                continue
        todo.append((task, unit))
    if conflicts:
        listing = "\n  ".join(str(p) for p in conflicts[:10])
        raise BenchmarkError(
            f"{len(conflicts)} result file(s) in {ctx.output} were produced with a different encoder, "
            f"split or configuration:\n  {listing}\nUse another --output, or --overwrite to replace them."
        )
    if results:
        log(f"resume: {len(results)} of {len(units)} units already finished in {ctx.output}; running {len(todo)}")
    for number, (task, unit) in enumerate(todo, 1):
        module = family_module(task.family)
        started = time.perf_counter()
        tqdm.write(f"[{number}/{len(todo)}] {unit.task} {unit.fraction}% seed {unit.seed}") if ctx.progress else None
        result, predictions = module.run_unit(ctx, task_data[task.id], unit)
        result.timings["unit_total"] = time.perf_counter() - started
        path = write_result(ctx.output, result, predictions)
        best = result.training.get("best_epoch")
        detail = f"best epoch {best}, " if best is not None else ""
        log(f"[{number}/{len(todo)}] {unit.task} {unit.fraction}% seed {unit.seed}: {result.metric} {100 * result.value:.2f} "
            f"({detail}{result.timings['unit_total']:.1f} s) -> {path}")
        results.append(result)
    return results


__all__ = ["plan_units", "parse_shard", "shard_units", "check_datasets", "run_units", "DatasetNotFoundError", "Path"]
