"""Task families: how a unit (task, fraction, seed) of each family is run.

A family module provides ``run_unit(ctx, task_data, unit) -> (Result, predictions)`` and
``expected_unit_key(ctx, task_data, unit) -> str`` (what a finished unit's result must carry
for a rerun to reuse it). Adding a family = adding a module and a line in ``FAMILIES``.
"""

from __future__ import annotations

import importlib

FAMILIES = {
    "classification": "benchmark.families.classification",
    "segmentation": "benchmark.families.segmentation",  # [seg]
    "detection": "benchmark.families.detection",
}


def family_module(family: str):
    name = FAMILIES.get(family)
    if name is None:
        raise NotImplementedError(f"no runner for task family {family!r} yet")
    return importlib.import_module(name)
