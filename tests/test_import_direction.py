"""The dependency direction: the harness (benchmark, models, tasks) never imports the recipes.

The recipes build on the harness (image towers from ``models``, text towers from
``models.text``, errors and image reading from ``benchmark``); the reverse would make the two
packages depend on each other. Every module of the harness is imported in a fresh interpreter
in which ``recipes`` cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, importlib.abc, pkgutil, sys

class HideRecipes(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "recipes" or name.startswith("recipes."):
            raise ImportError(f"the harness imported {name}")
        return None

sys.meta_path.insert(0, HideRecipes())
imported = 0
for package_name in ("benchmark", "models", "tasks"):
    package = importlib.import_module(package_name)
    for module in pkgutil.walk_packages(package.__path__, package_name + "."):
        importlib.import_module(module.name)
        imported += 1
print("imported", imported)
"""


def test_the_harness_imports_without_the_recipes():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 60  # every module of the three packages, not an empty walk


def recipe_imports(source: str) -> list[str]:
    """Modules of ``recipes`` that a piece of Python source imports anywhere (functions included)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "recipes"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "recipes":
            found.append(node.module)
    return found


def test_no_harness_module_imports_the_recipes_even_lazily():
    assert recipe_imports("def f():\n    from recipes.pretraining.encoders import load_bert\n") == [
        "recipes.pretraining.encoders"
    ]
    offenders = {
        str(path.relative_to(ROOT)): recipe_imports(path.read_text())
        for package in ("benchmark", "models", "tasks")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_reporting_imports_no_training_code():
    """The leaderboard and its statistics recompute scores from predictions files; they pull in
    neither torch nor OpenCV nor any task family."""
    script = (
        "import sys; import benchmark.leaderboard, benchmark.statistics, benchmark.scoring; "
        "print(sorted(m for m in sys.modules if m in ('torch', 'cv2') or m.startswith('benchmark.families')))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
