"""The one registration style of the project: a plug-in is one module of its package.

Every kind of plug-in (tasks, dataset adapters, checkpoint formats and spec sources,
architecture families, task families) lives in its own package, one module per plug-in, and
that module names what it contributes in one module-level constant (``TASK``, ``DATASET``,
``FORMAT``, ``SOURCE``, ``ARCHITECTURE``). :func:`discover` scans the package (modules whose
name starts with ``_`` and the ones listed in ``skip`` are helpers, not plug-ins) and returns
the constants by key. Adding a plug-in is adding one file; no list elsewhere names it.

Task families import heavy packages (mmdet, mmseg), so they are found by module name with
:func:`module_names` and imported only when a unit of that family runs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any


def module_names(package: ModuleType, skip: Iterable[str] = ()) -> list[str]:
    """Names of the plug-in modules of ``package``, sorted (helpers and ``_private`` left out)."""
    skipped = set(skip)
    return sorted(
        m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_") and m.name not in skipped
    )


def discover(
    package: ModuleType,
    attribute: str,
    key: Callable[[Any], str],
    *,
    check: Callable[[Any], bool] | None = None,
    skip: Iterable[str] = (),
) -> dict[str, Any]:
    """``{key(obj): obj}`` for the ``attribute`` constant of every plug-in module of ``package``.

    Modules without the constant are helpers and are left out; a constant that fails
    ``check`` (e.g. of the wrong type) or a key used twice is an error naming the module(s)."""
    found: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name in module_names(package, skip):
        module_path = f"{package.__name__}.{name}"
        module = importlib.import_module(module_path)
        if not hasattr(module, attribute):
            continue
        obj = getattr(module, attribute)
        if check is not None and not check(obj):
            raise TypeError(f"{module_path}.{attribute} is not a valid {attribute.lower()} plug-in: {obj!r}")
        name_key = key(obj)
        if not name_key:
            raise ValueError(f"{module_path}.{attribute} has an empty name")
        if name_key in found:
            raise ValueError(f"{attribute} {name_key!r} is defined twice: in {where[name_key]} and {module_path}")
        found[name_key] = obj
        where[name_key] = module_path
    return found
