"""Reading checkpoint files safely, and hashing them."""

from __future__ import annotations

import hashlib
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import CheckpointError

CHUNK = 1 << 20  # 1 MiB


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_torchscript_file(path: Path) -> bool:
    """TorchScript archives are zip files holding ``*/constants.pkl`` and ``*/code/``."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def is_safetensors_file(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9 or head[:2] == b"PK":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 0 < n < path.stat().st_size


def _pickle_detail(err: Exception) -> str:
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if m:
        return f"it references {m.group(1)}, which is not a tensor or plain container"
    for line in str(err).splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip().rstrip(".")
    return type(err).__name__


def read_checkpoint(path: Path, *, trust_pickle: bool = False) -> tuple[Any, str]:
    """Load a checkpoint file. Returns (object, how) with how in
    {"torchscript", "safetensors", "torch.load", "torch.load(weights_only=False)"}.

    ``torch.load`` runs with ``weights_only=True``. A file that needs full unpickling is
    refused with a CheckpointError explaining the trust option, and is loaded with
    ``weights_only=False`` only when ``trust_pickle`` is set.
    """
    if is_torchscript_file(path):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated")
                return torch.jit.load(str(path), map_location="cpu"), "torchscript"
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(
                f"{path}: looks like a TorchScript archive but torch.jit.load failed "
                f"({type(e).__name__}: {e}). Re-export it with torch.jit.save from the same "
                f"torch version, or save a state dict instead."
            ) from e
    if is_safetensors_file(path):
        try:
            from safetensors.torch import load_file
        except ImportError as e:  # pragma: no cover - safetensors is a dependency
            raise CheckpointError(
                f"{path}: reading .safetensors files needs the 'safetensors' package (pip install safetensors)"
            ) from e
        try:
            return load_file(str(path), device="cpu"), "safetensors"
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{path}: cannot read safetensors file ({e})") from e

    try:
        return torch.load(path, map_location="cpu", weights_only=True), "torch.load"
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise CheckpointError(
                f"{path}: this checkpoint holds pickled Python objects besides tensors "
                f"({_pickle_detail(e)}), so it cannot be read with torch.load(weights_only=True), "
                f"the safe default. Unpickling it can execute arbitrary code. If you trust the "
                f"file's source, rerun with --trust-checkpoint (trust_pickle=True). Or re-save "
                f"just the weights once, e.g. torch.save(torch.load(path, weights_only=False)"
                f"['state_dict'], 'weights.pt'), and pass that file."
            ) from e
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(
            f"{path}: cannot read this file as a PyTorch checkpoint ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Supported: torch.save files "
            f"(.pt/.pth/.ckpt), TorchScript archives, .safetensors."
        ) from e

    # trusted: full unpickling
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.load(path, map_location="cpu", weights_only=False), "torch.load(weights_only=False)"
    except ModuleNotFoundError as e:
        raise CheckpointError(
            f"{path}: unpickling this trusted checkpoint needs the Python module "
            f"{e.name!r}, which is not installed. Install the code the checkpoint was "
            f"saved from, or re-save just its state dict with that code available."
        ) from e
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path}: cannot unpickle this checkpoint ({type(e).__name__}: {e})") from e
