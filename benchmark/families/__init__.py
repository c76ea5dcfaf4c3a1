"""Task families: how a unit (task, fraction, seed) of each family is run.

A family module provides ``plan_of(task, ctx)`` (its typed plan, benchmark/unit_plan.py),
``key_parts(ctx, task_data, unit) -> dict`` (what its unit key hashes beside the plan and the
shared parts) and ``run_unit(ctx, task_data, unit) -> UnitOutcome`` (metrics, predictions,
training log: benchmark/unit_outcome.py), optionally ``group_key`` / ``run_group`` for units
that run together. The runner (benchmark/runner.py) computes the unit key and builds the
``Result``; a family only computes. The module's name is the family's name, so adding a family is adding
a module (the project's one registration style, :mod:`benchmark.plugins`; families import
heavy packages such as mmdet, so a family module is imported only when one of its units runs).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from ..plugins import module_names

FAMILIES: tuple[str, ...] = tuple(module_names(sys.modules[__name__]))


def family_module(family: str):
    if family not in FAMILIES:
        raise NotImplementedError(f"no runner for task family {family!r}; families: {', '.join(FAMILIES)}")
    module = importlib.import_module(f"{__name__}.{family}")
    for requirement in getattr(module, "REQUIRES", ()):
        if importlib.util.find_spec(requirement) is None:
            from ..errors import BenchmarkError

            raise BenchmarkError(
                f"{family} tasks need the Python package {requirement!r}, which is not installed. "
                "Run `bash scripts/setup.sh` (it builds mmcv and installs mmdet/mmsegmentation), "
                "or leave these tasks out with --tasks."
            )
    return module
