"""State-dict helpers shared by the checkpoint formats and the loader.

The central rule (:func:`load_backbone_state`): a checkpoint is loaded only when every
backbone tensor of the architecture is present with the right shape and no unknown
backbone-like tensors are left over; otherwise the load is refused with a message that
lists the missing/unexpected/mismatched keys, unless the caller allows a partial load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from benchmark.errors import CheckpointError
from models.encoder import Encoder, InputContract

# where trainers commonly nest the weights inside a checkpoint dict
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "weights")
MAX_LISTED = 20


def is_tensor_mapping(obj: Any) -> bool:
    """A non-empty mapping of str -> Tensor (a few non-tensor entries are tolerated)."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    n_tensor = sum(isinstance(v, Tensor) for v in obj.values())
    return n_tensor > 0 and n_tensor >= 0.5 * len(obj) and all(isinstance(k, str) for k in obj)


def find_state_dict(obj: Any) -> tuple[dict[str, Tensor], str | None] | None:
    """The tensor mapping in a checkpoint object: the object itself, or under one of
    :data:`STATE_DICT_KEYS` (one level). Returns (tensors only, container key) or None."""
    if is_tensor_mapping(obj):
        return {k: v for k, v in obj.items() if isinstance(v, Tensor)}, None
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if is_tensor_mapping(inner):
                return {k: v for k, v in inner.items() if isinstance(v, Tensor)}, key
    return None


def strip_ddp(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove leading ``module.`` (DistributedDataParallel / DataParallel) from keys."""
    out: dict[str, Tensor] = {}
    for k, v in state_dict.items():
        while k.startswith("module."):
            k = k[len("module.") :]
        out.setdefault(k, v)
    return out


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _listing(keys: list[str], what: str) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    more = f" ... and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return f"  {what} ({len(keys)}): {shown}{more}"


def required_keys(encoder: Encoder) -> list[str]:
    """Backbone tensors that must come from the checkpoint (BatchNorm's
    ``num_batches_tracked`` counters are optional: unused in eval mode, absent from older
    torchvision files)."""
    return [k for k in encoder.state_dict() if not k.endswith("num_batches_tracked")]


def load_backbone_state(
    encoder: Encoder,
    state_dict: Mapping[str, Tensor],
    *,
    where: str,
    allow_partial: bool = False,
) -> dict[str, Any]:
    """Load a prefix-stripped backbone state dict into ``encoder``.

    ``where`` describes the source for messages (file, format, prefix). Tensors under the
    encoder's ``head_prefixes`` (``fc.``, ``head.``) are ignored. Refuses (CheckpointError)
    on missing backbone tensors, unexpected tensors or shape mismatches unless
    ``allow_partial`` (then mismatched tensors are skipped and everything is reported).
    Returns the load report: n_expected, n_loaded, missing, unexpected, mismatched,
    head_ignored.
    """
    own = encoder.state_dict()
    required = required_keys(encoder)
    head = [k for k in state_dict if k.startswith(encoder.head_prefixes)] if encoder.head_prefixes else []
    candidates = {k: v for k, v in state_dict.items() if k not in set(head)}

    missing = [k for k in required if k not in candidates]
    unexpected = [k for k in candidates if k not in own]
    mismatched = [k for k, v in candidates.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]

    problems = bool(missing or unexpected or mismatched)
    if problems and not allow_partial:
        lines = [
            f"{where} does not fit architecture {encoder.arch}: "
            f"{len(required) - len(missing)} of {len(required)} backbone tensors found"
            + (f", {len(missing)} missing" if missing else "")
            + (f", {len(unexpected)} unexpected" if unexpected else "")
            + (f", {len(mismatched)} with the wrong shape" if mismatched else "")
            + "."
        ]
        if missing:
            lines.append(_listing(missing, "missing"))
        if unexpected:
            lines.append(_listing(unexpected, "unexpected"))
        if mismatched:
            details = [
                f"{k} (checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)})" for k in mismatched
            ]
            lines.append(_listing(details, "wrong shape"))
            for k in mismatched:
                advice = encoder.explain_shape_mismatch(k, tuple(state_dict[k].shape), tuple(own[k].shape))
                if advice:
                    lines.append("  " + advice)
        lines.append(
            "If the checkpoint is for another registered architecture, pass --arch NAME "
            "(arch=...). To load it anyway, leaving the missing or mismatched tensors at "
            "random initialisation, pass --allow-partial-load (allow_partial=True); the "
            "results would then not measure the pretrained encoder."
        )
        raise CheckpointError("\n".join(lines))

    to_load = {k: v for k, v in candidates.items() if k in own and k not in set(mismatched)}
    result = encoder.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # filtered above
    return {
        "n_expected": len(required),
        "n_loaded": sum(1 for k in required if k in to_load),
        "missing": missing,
        "unexpected": unexpected,
        "mismatched": [
            {"key": k, "checkpoint": list(state_dict[k].shape), "model": list(own[k].shape)} for k in mismatched
        ],
        "head_ignored": head,
        "partial": problems,
    }


def encoder_from_state_dict(
    state_dict: Mapping[str, Tensor],
    *,
    where: str,
    arch: str | None = None,
    allow_partial: bool = False,
    contract: InputContract | None = None,
    user_contract: InputContract | None = None,
) -> tuple[Encoder, dict[str, Any]]:
    """Build the architecture for a prefix-stripped backbone state dict and load it.

    ``arch`` None -> inferred. The encoder's contract is ``contract`` (default: the
    architecture's) with ``user_contract`` applied on top. Missing tensors (partial loads
    only) keep a seed-0 random initialisation, so even partial loads are reproducible.
    """
    from models.architectures import build_arch, infer_arch, infer_in_chans
    from models.encoder import merge_contract

    inferred = arch is None
    if arch is None:
        try:
            arch = infer_arch(state_dict)
        except CheckpointError as e:
            raise CheckpointError(f"{where}: {e}") from e
    encoder = build_arch(arch, seed=0, in_chans=infer_in_chans(state_dict, arch))
    report = load_backbone_state(encoder, state_dict, where=where, allow_partial=allow_partial)
    report["arch"] = arch
    report["arch_inferred"] = inferred
    base = contract if contract is not None else encoder.contract
    encoder.contract = merge_contract(base, user_contract)
    return encoder, report


__all__ = [
    "STATE_DICT_KEYS",
    "is_tensor_mapping",
    "find_state_dict",
    "strip_ddp",
    "strip_prefix",
    "required_keys",
    "load_backbone_state",
    "encoder_from_state_dict",
]
