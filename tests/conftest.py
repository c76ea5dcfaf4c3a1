"""Shared fixtures: a small demo suite (same generator and code paths as the real demo)."""

from __future__ import annotations

import pytest


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
