"""Task registry: every module in the ``tasks`` package that defines ``TASK`` is a task.

Adding a task = adding one file ``tasks/<task_id>.py`` with a ``TASK = ...Spec(...)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

import tasks as tasks_package

from .errors import ConfigError
from .task_spec import TaskSpec


@lru_cache(maxsize=1)
def all_tasks() -> dict[str, TaskSpec]:
    found: dict[str, TaskSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(tasks_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tasks.{module_info.name}")
        spec = getattr(module, "TASK", None)
        if isinstance(spec, TaskSpec):
            if spec.id in found:
                raise RuntimeError(f"task id {spec.id!r} defined twice")
            found[spec.id] = spec
    return found


def select_tasks(selection: str | None, default_family: str | None = None) -> list[TaskSpec]:
    """Resolve ``--tasks`` (comma-separated task ids and/or family names, or 'all')."""
    tasks = all_tasks()
    if not selection:
        selection = default_family or "all"
    chosen: list[TaskSpec] = []
    for token in [t.strip() for t in selection.split(",") if t.strip()]:
        if token == "all":
            matches = list(tasks.values())
        elif token in tasks:
            matches = [tasks[token]]
        else:
            matches = [t for t in tasks.values() if t.family == token or t.dataset == token]
        if not matches:
            families = sorted({t.family for t in tasks.values()})
            raise ConfigError(f"unknown task or family {token!r}. Tasks: {', '.join(tasks)}; families: {', '.join(families)}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen
