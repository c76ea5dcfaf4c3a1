"""Task registry: every module in the ``tasks`` package that defines ``TASK`` is a task.

Adding a task = adding one file ``tasks/<task_id>.py`` with a ``TASK = ...Spec(...)``
(the project's one registration style, :mod:`benchmark.plugins`).
"""

from __future__ import annotations

from functools import lru_cache

import tasks as tasks_package

from .errors import ConfigError
from .plugins import discover
from .task_spec import TaskSpec


@lru_cache(maxsize=1)
def all_tasks() -> dict[str, TaskSpec]:
    return discover(tasks_package, "TASK", key=lambda spec: spec.id, check=lambda obj: isinstance(obj, TaskSpec))


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
            raise ConfigError(
                f"unknown task or family {token!r}. Tasks: {', '.join(tasks)}; families: {', '.join(families)}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen
