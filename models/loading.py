"""``load_encoder(spec)``: turn an ``--encoder`` spec into a frozen :class:`Encoder`.

Specs:

* a file path: a checkpoint whose format is auto-detected (see ``models/formats``):
  torchvision ResNet / timm ViT state dicts, Lightning or plain state dicts with a
  method prefix (MGCA, ConVIRT, GLoRIA, BenchX, M-FLAG, G2D), TorchScript modules,
  ``.safetensors`` files;
* ``random:<arch>[@seed]``, ``imagenet:<arch>[@WEIGHTS]``;
* ``module:function`` / ``pkg.mod:function`` (a user factory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.errors import CheckpointError, ConfigError
from models.checkpoint_io import read_checkpoint, sha256_file, sha256_text
from models.encoder import Encoder, InputContract
from models.formats import (
    SOURCES,
    LoadOptions,
    detect_format,
    formats_by_priority,
)
from models.state_loading import encoder_from_state_dict, find_state_dict


@dataclass
class LoadedEncoder:
    encoder: Encoder
    spec: str  # canonical spec: the resolved file path, or random:/imagenet:/module: string
    format: str  # checkpoint format or source scheme
    sha256: str | None  # of the checkpoint file; for spec sources their content hash (a model folder) or the spec's
    method_hint: str | None = None  # e.g. "mgca" from the key prefix; "random_init"; "imagenet"
    load_report: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """JSON-serialisable record for result files."""
        return {
            "spec": self.spec,
            "format": self.format,
            "sha256": self.sha256,
            "method_hint": self.method_hint,
            "load_report": self.load_report,
            "encoder": self.encoder.describe(),
        }


def supported_specs() -> str:
    fmts = ", ".join(f.name for f in formats_by_priority())
    srcs = "; ".join(s.description for s in SOURCES.values())
    return f"checkpoint files ({fmts}); {srcs}"


def load_encoder(
    spec: str,
    *,
    arch: str | None = None,
    allow_partial: bool = False,
    trust_pickle: bool = False,
    input_contract: InputContract | None = None,
) -> LoadedEncoder:
    """Load the encoder named by ``spec`` (see module docstring); returns it frozen
    (eval mode, no gradients; see :meth:`Encoder.freeze`).

    ``arch``: architecture to build instead of inferring it from the checkpoint.
    ``allow_partial``: load even when backbone tensors are missing/unexpected/mismatched
    (they are reported in ``load_report``). ``trust_pickle``: allow checkpoints that need
    full unpickling (``torch.load(weights_only=False)``). ``input_contract``: overrides
    the encoder's normalisation (and channels / size where the weights allow).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--encoder: expected a checkpoint path or spec, got {spec!r}")
    spec = spec.strip()
    opts = LoadOptions(arch=arch, allow_partial=allow_partial, trust_pickle=trust_pickle, input_contract=input_contract)

    for source in SOURCES.values():
        if source.matches(spec):
            return _from_source(source, spec, opts)

    path = Path(spec).expanduser()
    if path.is_file():
        loaded = _load_file(path, opts)
    else:
        for source in SOURCES.values():
            if source.implicit and source.matches_implicit(spec):
                return _from_source(source, spec, opts)
        if path.exists():
            raise CheckpointError(f"--encoder {spec}: is a directory; pass the checkpoint file inside it")
        raise CheckpointError(
            f"--encoder {spec}: no such file. Expected a checkpoint file or a spec: {supported_specs()}."
        )
    loaded.encoder.freeze()
    return loaded


def _from_source(source, spec: str, opts: LoadOptions) -> LoadedEncoder:
    res = source.load(spec, opts)
    res.encoder.freeze()
    if source.source:
        res.load_report.setdefault("format_source", source.source)
    res.load_report.setdefault("contract_origin", contract_origin(opts, None))
    return LoadedEncoder(
        encoder=res.encoder,
        spec=res.canonical_spec,
        format=res.format,
        sha256=res.sha256 or sha256_text(res.canonical_spec),
        method_hint=res.method_hint,
        load_report=res.load_report,
    )


def _load_file(path: Path, opts: LoadOptions) -> LoadedEncoder:
    path = path.resolve()
    obj, how = read_checkpoint(path, trust_pickle=opts.trust_pickle)
    if isinstance(obj, nn.Module) and not isinstance(obj, torch.jit.ScriptModule):
        # a whole pickled model (only reachable with trust_pickle): use its weights
        obj = obj.state_dict()
        how += " (pickled nn.Module, state_dict() used)"
    fmt = detect_format(obj)
    if fmt is None:
        raise CheckpointError(f"{path}: {_unrecognised(obj)} Supported: {supported_specs()}.")

    where = f"{path} (format {fmt.name})"
    if fmt.builds_encoder:
        encoder = fmt.build_encoder(obj, opts, where)
        report: dict[str, Any] = {"n_loaded": None, "missing": [], "unexpected": []}
        method_hint = None
    else:
        try:
            state_dict, info = fmt.extract(obj)
        except CheckpointError as e:
            raise CheckpointError(f"{where}: {e}") from e
        if info.get("prefix"):
            where = (
                f"{path} (format {fmt.name}, prefix {info['prefix']!r}"
                + (f", method {info['method_hint']}" if info.get("method_hint") else "")
                + ")"
            )
        format_contract = info.pop("contract", None)
        encoder, report = encoder_from_state_dict(
            state_dict,
            where=where,
            arch=opts.arch or info.pop("arch", None),
            allow_partial=opts.allow_partial,
            contract=format_contract,
            user_contract=opts.input_contract,
        )
        report["contract_origin"] = contract_origin(
            opts, info.pop("contract_origin", None) if format_contract else None
        )
        report.update({k: v for k, v in info.items() if k not in ("method_hint", "arch")})
        method_hint = info.get("method_hint")
    if fmt.source:
        report["format_source"] = fmt.source
    report["read_with"] = how
    return LoadedEncoder(
        encoder=encoder,
        spec=str(path),
        format=fmt.name,
        sha256=sha256_file(path),
        method_hint=method_hint,
        load_report=report,
    )


def contract_origin(opts: LoadOptions, format_origin: str | None) -> str:
    """Where the encoder's input contract came from, for the load report."""
    if opts.input_contract is not None:
        return "user (--input-contract)"
    return format_origin or "architecture default"


def _unrecognised(obj: Any) -> str:
    found = find_state_dict(obj)
    if found is not None:
        keys = list(found[0])
        return (
            f"found {len(keys)} tensors but no known encoder layout (first keys: "
            f"{', '.join(keys[:8])}). If the backbone is under an unknown prefix together "
            f"with other weights, save it on its own, or use a `module:function` factory."
        )
    if isinstance(obj, dict):
        return (
            f"a dict with keys {sorted(map(str, obj))[:12]} but no state dict of tensors "
            f"(looked at the top level and under 'state_dict', 'model', ...)."
        )
    return f"unsupported checkpoint content ({type(obj).__name__})."


__all__ = ["LoadedEncoder", "load_encoder", "supported_specs"]
