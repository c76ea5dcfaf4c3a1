"""The installed layout (README, "Layout"): four top-level packages under their own names, a wheel that
holds every file of them, and the guard (benchmark/layout.py) that stops with a clear error when another
package answers to ``models`` or ``tasks``. Offline: the wheel is built with --no-index --no-deps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from benchmark.layout import MARKER, TOP_LEVEL, ShadowedPackageError, check_packages

ROOT = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def python(code: str, cwd: Path, pythonpath: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """(the wheel built from a copy of the project's packages, the relative paths of the files copied)."""
    src = tmp_path_factory.mktemp("wheel-src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in TOP_LEVEL:
        shutil.copytree(ROOT / package, src / package, ignore=IGNORED)
    files = {p.relative_to(src).as_posix() for package in TOP_LEVEL for p in (src / package).rglob("*") if p.is_file()}
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*command, str(src), "-w", str(out)], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("medvlp_bench-*.whl")
    return path, files


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory):
    """The wheel unpacked into an empty folder (what pip installs for a pure-Python wheel)."""
    folder = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel[0]) as archive:
        archive.extractall(folder)
    return folder


def test_the_wheel_installs_exactly_the_four_packages_with_every_file(wheel):
    path, files = wheel
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        top_level = archive.read(info).decode().split()
        entry_points = archive.read(info.replace("top_level.txt", "entry_points.txt")).decode()
    packaged = {n for n in names if ".dist-info/" not in n}
    assert {n.split("/")[0] for n in packaged} == set(TOP_LEVEL) == {"benchmark", "models", "tasks", "recipes"}
    assert sorted(top_level) == sorted(TOP_LEVEL)  # no tests, scripts, bench or medvlp_bench
    missing = sorted(files - packaged)
    assert not missing, f"files of the packages that the wheel leaves out (pyproject package-data): {missing[:10]}"
    assert packaged == files
    # the data files the code reads at run time, by name (these were missing before package-data named them)
    for data in (
        "benchmark/data/reference_targets/demo/rsna.csv.gz",
        "benchmark/data/reference_targets/paper/siim.csv.gz",
        "recipes/syncxr/lexicon/negation.txt",
        "tasks/manifests/rsna.csv.gz",
    ):
        assert (ROOT / data).is_file() and data in packaged, data
    assert "medvlp-bench = benchmark.cli:main" in entry_points


def test_every_top_level_package_carries_the_marker():
    for package in TOP_LEVEL:
        assert MARKER in (ROOT / package / "__init__.py").read_text(), package


def test_the_installed_wheel_runs_from_its_own_folder(site, tmp_path):
    code = (
        "import benchmark, models, tasks, recipes\n"
        "from benchmark.cli import main\n"
        "from benchmark.reference_targets import REFERENCE_DIR\n"
        "from recipes.syncxr.lexicon import load_lexicon\n"
        "assert sorted(p.name for p in REFERENCE_DIR.iterdir()) == ['demo', 'paper']\n"
        "assert load_lexicon().entities\n"
        "import sys\n"
        "for m in (benchmark, models, tasks, recipes, sys.modules[main.__module__]): print(m.__file__)\n"
        "print(REFERENCE_DIR)\n"
    )
    done = python(code, cwd=tmp_path, pythonpath=site)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [Path(line) for line in done.stdout.split("\n") if line]
    assert len(printed) == 6 and all(p.is_relative_to(site) for p in printed), done.stdout


@pytest.mark.parametrize("name", ["models", "tasks"])
def test_a_foreign_package_first_on_the_path_stops_the_import_with_a_clear_error(name, tmp_path):
    project = tmp_path / "my-project"  # a user's project with its own package of that name
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text("# the user's own package\n")
    done = python("import benchmark", cwd=project, pythonpath=ROOT)  # the current directory comes first
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"benchmark.layout.ShadowedPackageError: the top-level package '{name}' resolves to "
        f"{project / name / '__init__.py'}, not medvlp-bench's {ROOT / name / '__init__.py'}"
    ), last
    assert "Run from a folder without a" in last and "(README, 'Layout')" in last


def test_run_benchmark_from_a_checkout_is_not_shadowed_by_the_current_directory(tmp_path):
    """``python run_benchmark.py`` puts the checkout first on sys.path, whatever the current directory holds."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("raise RuntimeError('the wrong models package')\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_benchmark.py"), "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "medvlp-bench 0.1.0"


def test_a_package_imported_from_elsewhere_is_named(tmp_path, monkeypatch):
    foreign = types.ModuleType("tasks")
    foreign.__file__ = str(tmp_path / "tasks" / "__init__.py")
    monkeypatch.setitem(sys.modules, "tasks", foreign)
    with pytest.raises(ShadowedPackageError, match=r"'tasks' was already imported from .*tmp.*tasks/__init__\.py"):
        check_packages()
    monkeypatch.undo()
    check_packages()  # ours again: no error


def test_another_distributions_file_in_our_folder_is_detected(site, tmp_path):
    """pip writes two distributions' ``models`` packages into one folder: the later one's __init__.py wins."""
    merged = tmp_path / "site-packages"
    shutil.copytree(site, merged)
    (merged / "models" / "__init__.py").write_text('"""Another distribution\'s models package."""\n')
    done = python("import benchmark", cwd=tmp_path, pythonpath=merged)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"benchmark.layout.ShadowedPackageError: {merged / 'models' / '__init__.py'} is not medvlp-bench's "
        f"(it lacks the line {MARKER})"
    ), last
    assert "its own virtual environment" in last
