"""Test helper: ``run_benchmark.py`` arguments for a quiet run on the test demo suite."""

from __future__ import annotations


def demo_cli_args(demo_root, cache, output, *extra, encoder: str = "random:resnet_tiny") -> list[str]:
    """The arguments of a run of ``encoder`` on the demo suite under ``demo_root`` (no progress
    bars, no decoding workers), followed by ``extra``."""
    return ["--encoder", encoder, "--suite", "demo", "--demo-root", str(demo_root), "--cache-dir", str(cache),
            "--output", str(output), "--no-progress", "--workers", "0", *extra]  # fmt: skip
