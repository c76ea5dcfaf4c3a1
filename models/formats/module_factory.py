"""``module:function`` (or ``module:pkg.mod:function``): a user factory.

The factory is called without arguments and returns an :class:`~models.encoder.Encoder`
(used as is), an ``nn.Module`` whose forward maps a prepared batch to (B, D) features
(wrapped; global feature only), or a tuple ``(module, contract)`` with an InputContract
or a dict of its fields. An input contract passed to ``load_encoder`` takes precedence.
The current directory is importable as a fallback."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from torch import nn

from benchmark.errors import CheckpointError, ConfigError
from models.checkpoint_io import sha256_file
from models.encoder import Encoder, InputContract, merge_contract
from models.formats.base import LoadOptions, SourceResult, SpecSource
from models.wrapped import ModuleEncoder

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
TARGET_RE = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


def _import(modname: str, spec: str):
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        top = modname.split(".", 1)[0]
        if e.name == top and cwd not in sys.path and (Path(cwd, top + ".py").is_file() or Path(cwd, top).is_dir()):
            sys.path.insert(0, cwd)
            return _import(modname, spec)
        raise ConfigError(
            f"encoder factory {spec!r}: cannot import module {modname!r} ({e}). Make it "
            f"importable: install it, run from its folder, or add its folder to PYTHONPATH."
        ) from e
    except Exception as e:  # noqa: BLE001 - user code
        raise ConfigError(f"encoder factory {spec!r}: importing {modname!r} failed ({type(e).__name__}: {e})") from e


def _contract(value: Any, spec: str) -> InputContract:
    if isinstance(value, InputContract):
        return value
    if isinstance(value, dict):
        return InputContract.from_dict(value)
    raise ConfigError(
        f"encoder factory {spec!r}: the second element of the returned tuple must be an "
        f"InputContract or a dict of its fields, got {type(value).__name__}"
    )


class ModuleFactory(SpecSource):
    scheme = "module"
    description = "module:function - a user factory returning an Encoder or nn.Module"
    implicit = True

    def matches(self, spec: str) -> bool:
        return spec.startswith("module:") and bool(TARGET_RE.match(spec[len("module:") :]))

    def matches_implicit(self, spec: str) -> bool:
        return bool(TARGET_RE.match(spec))

    def load(self, spec: str, opts: LoadOptions) -> SourceResult:
        target = spec[len("module:") :] if self.matches(spec) else spec
        modname, funcname = TARGET_RE.match(target).groups()
        if opts.arch is not None:
            raise ConfigError(
                f"{spec!r}: --arch cannot be used with an encoder factory, which "
                f"builds its own architecture; drop --arch"
            )
        mod = _import(modname, spec)
        factory: Any = mod
        for part in funcname.split("."):
            if not hasattr(factory, part):
                raise ConfigError(f"encoder factory {spec!r}: module {modname!r} has no attribute {funcname!r}")
            factory = getattr(factory, part)
        if not callable(factory):
            raise ConfigError(f"encoder factory {spec!r}: {funcname!r} is not callable")
        try:
            result = factory()
        except Exception as e:  # noqa: BLE001 - user code
            raise CheckpointError(f"encoder factory {spec!r} raised {type(e).__name__}: {e}") from e

        contract = None
        if isinstance(result, tuple) and len(result) == 2:
            result, contract = result[0], _contract(result[1], spec)
        if isinstance(result, Encoder):
            encoder = result
            if contract is not None:
                encoder.contract = contract
            encoder.contract = merge_contract(encoder.contract, opts.input_contract)
        elif isinstance(result, nn.Module):
            encoder = ModuleEncoder(
                result,
                arch=f"module:{target}",
                contract=opts.input_contract or contract or InputContract(),
                source=spec,
            )
        else:
            raise ConfigError(
                f"encoder factory {spec!r} returned {type(result).__name__}; it must return an "
                f"Encoder, an nn.Module mapping (B,C,H,W) to (B,D), or (module, InputContract)"
            )
        report: dict[str, Any] = {"factory": target, "n_loaded": None, "missing": [], "unexpected": []}
        file = getattr(mod, "__file__", None)
        if file and Path(file).is_file():
            report["module_file"] = file
            report["module_file_sha256"] = sha256_file(file)
        return SourceResult(encoder, f"module:{target}", self.scheme, None, report)


SOURCE = ModuleFactory()  # this module's plug-in (benchmark/plugins.py)
