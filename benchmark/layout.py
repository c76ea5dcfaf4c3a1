"""The top-level packages medvlp-bench installs, and the guard against another package of the same name.

medvlp-bench installs four top-level packages, ``benchmark``, ``models``, ``tasks`` and ``recipes``
(README, "Layout": why they are not under one namespace). The names are generic, so another package can
win ``import models``: a project folder ``models/`` (with an ``__init__.py``) in the current directory or
on ``PYTHONPATH``, another editable install, or another distribution whose files pip wrote into the same
``site-packages/models`` folder (replacing our ``__init__.py``). Unguarded, that fails later and
obscurely (``No module named 'models.encoder'``) or imports foreign code. :func:`check_packages` runs
when ``benchmark`` is imported and stops with a :class:`ShadowedPackageError` that names the folder that
won and what to do.

What it cannot guard: a foreign ``benchmark`` that wins ``import benchmark`` (then this module is never
imported; the error is ``No module named 'benchmark.cli'``, and the same advice applies), and
``recipes``, which the harness must not import (``tests/test_import_direction.py``); the recipes import
``benchmark`` first, so ``models`` and ``tasks`` are checked for them too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DISTRIBUTION = "medvlp-bench"
TOP_LEVEL = ("benchmark", "models", "tasks", "recipes")  # exactly the wheel's top-level names (tested)
CHECKED = ("benchmark", "models", "tasks")  # the harness's own; see the module docstring for recipes
# every one of our packages' __init__.py holds this line; another distribution's file in its place does not
MARKER = f'__distribution__ = "{DISTRIBUTION}"'


class ShadowedPackageError(ImportError):
    """Another package answers to one of medvlp-bench's top-level names."""


def installed_root() -> Path:
    """The folder holding our top-level packages (the checkout, or ``site-packages``)."""
    return Path(__file__).resolve().parents[1]


def _resolved(name: str) -> tuple[str | None, bool]:
    """(file of the package ``import name`` gives, whether it is already imported); no import happens."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None), True  # None: a namespace package
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None, False
    return (spec.origin if spec is not None and spec.has_location else None), False


def _providers(name: str) -> list[str]:
    """Installed distributions that declare the top-level name (slow: reads every distribution's record)."""
    from importlib.metadata import packages_distributions

    try:
        return sorted(set(packages_distributions().get(name, [])))
    except Exception:  # noqa: BLE001 - a broken record elsewhere must not hide the real error
        return []


def _advice(name: str) -> str:
    return (
        f"medvlp-bench installs the generic top-level names {', '.join(TOP_LEVEL)} (README, 'Layout'). Run from a "
        f"folder without a '{name}' package, take that folder off PYTHONPATH, or install medvlp-bench into its "
        "own virtual environment (bash scripts/setup.sh makes one)."
    )


def check_packages(names=CHECKED, root: Path | None = None) -> None:
    """Raise :class:`ShadowedPackageError` unless every package in ``names`` is medvlp-bench's, i.e. the
    ``__init__.py`` in ``root`` (default: beside this package) carrying :data:`MARKER`."""
    root = (root or installed_root()).resolve()
    for name in names:
        ours = root / name / "__init__.py"
        found, imported = _resolved(name)
        if found is None or Path(found).resolve() != ours:
            where = "was already imported from" if imported else "resolves to"
            what = found or ("a namespace package" if imported else "nothing importable")
            others = [d for d in _providers(name) if d != DISTRIBUTION]
            raise ShadowedPackageError(
                f"the top-level package '{name}' {where} {what}, not medvlp-bench's {ours}: another package of "
                "that name comes first (a folder in the current directory or on PYTHONPATH, or another "
                "installed distribution"
                + (f"; distributions declaring '{name}': {', '.join(others)}" if others else "")
                + "). "
                + _advice(name),
                name=name,
            )
        try:
            text = ours.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise ShadowedPackageError(f"cannot read {ours}: {error}", name=name) from error
        if MARKER not in text:
            others = [d for d in _providers(name) if d != DISTRIBUTION]
            raise ShadowedPackageError(
                f"{ours} is not medvlp-bench's (it lacks the line {MARKER}): another distribution installed a "
                f"'{name}' package into the same folder and replaced the file"
                + (f" (distributions declaring '{name}': {', '.join(others)})" if others else "")
                + f". medvlp-bench installs the generic top-level names {', '.join(TOP_LEVEL)} (README, 'Layout'): "
                "install it into its own virtual environment (bash scripts/setup.sh makes one), or uninstall the "
                "other distribution and reinstall medvlp-bench.",
                name=name,
            )


__all__ = ["CHECKED", "DISTRIBUTION", "MARKER", "TOP_LEVEL", "ShadowedPackageError", "check_packages"]
