"""Task families: how a unit (task, fraction, seed) of each family is run.

A family module provides ``run_unit(ctx, task_data, unit) -> (Result, predictions)`` and
``expected_unit_key(ctx, task_data, unit) -> str`` (what a finished unit's result must carry
for a rerun to reuse it). Adding a family = adding a module and a line in ``FAMILIES``.
"""

from __future__ import annotations

import importlib
import importlib.util

FAMILIES = {
    "classification": "benchmark.families.classification",
    "segmentation": "benchmark.families.segmentation",  # [seg]
    "detection": "benchmark.families.detection",
    "zeroshot": "benchmark.families.zeroshot",  # [zeroshot]
}


def family_module(family: str):
    name = FAMILIES.get(family)
    if name is None:
        raise NotImplementedError(f"no runner for task family {family!r} yet")
    module = importlib.import_module(name)
    for requirement in getattr(module, "REQUIRES", ()):
        if importlib.util.find_spec(requirement) is None:
            from ..errors import BenchmarkError

            raise BenchmarkError(
                f"{family} tasks need the Python package {requirement!r}, which is not installed. "
                "Run `bash scripts/setup.sh` (it builds mmcv and installs mmdet/mmsegmentation), "
                "or leave these tasks out with --tasks."
            )
    return module
