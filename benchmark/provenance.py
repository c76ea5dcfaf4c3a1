"""What produced a result: harness version and git state, packages, device, checkpoint hash."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

from . import __version__

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scikit-learn",
    "pillow",
    "pydicom",
    "opencv-python",
    "mmcv",
    "mmengine",
    "mmdet",
    "mmsegmentation",
    "timm",
    "transformers",
    "diffusers",
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@lru_cache(maxsize=1)
def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def harness_provenance(device: torch.device) -> dict:
    return {
        "harness_version": __version__,
        "git": git_state(),
        "packages": package_versions(),
        "device": device_description(device),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }
