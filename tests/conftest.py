"""Shared fixtures: a small demo suite (same generator and code paths as the real demo)."""

from __future__ import annotations

import shutil
import tempfile

import pytest

# Measured on a fresh clone (2026-12-01): the suite's temporary files peak below 1 GB (each
# passing test's tmp_path is deleted, see pyproject.toml); the clone with its .venv is 6.9 GB.
TEMP_GB_NEEDED = 1.5


def pytest_report_header(config):
    """Say how much disk the temporary directory has: a full disk fails tests far from its cause."""
    free_gb = shutil.disk_usage(tempfile.gettempdir()).free / 1e9
    line = f"medvlp-bench: {free_gb:.1f} GB free in {tempfile.gettempdir()}"
    if free_gb < TEMP_GB_NEEDED:
        line += f" -- LOW: the suite writes up to ~1 GB of temporary files; free at least {TEMP_GB_NEEDED} GB"
    return line


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    from benchmark.demo import generate_demo_suite

    root = tmp_path_factory.mktemp("demo-suite")
    generate_demo_suite(root, scale=0.35, progress=False)
    return root


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one torch thread (two fight over shared cores); the module
    opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` and the previous
    count is restored afterwards, so later modules keep theirs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
