"""The linter is part of the test suite, so CI (.ci/run) fails on a finding.

Configuration: ``[tool.ruff]`` in pyproject.toml (pyflakes, pycodestyle errors and warnings,
lines of at most 120 characters). Fix findings with ``.venv/bin/ruff check --fix`` and
``.venv/bin/ruff format`` (the code is kept in ruff's format)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff() -> list[str]:
    beside_python = Path(sys.executable).with_name("ruff")
    found = str(beside_python) if beside_python.is_file() else shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed: run `bash scripts/setup.sh` (it installs the test extras, ruff included)")
    return [found]


def test_ruff_finds_nothing():
    done = subprocess.run([*ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_code_is_in_ruff_format():
    done = subprocess.run(
        [*ruff(), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, "files not in ruff's format (run .venv/bin/ruff format):\n" + done.stdout[-4000:]
