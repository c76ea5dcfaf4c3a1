"""Backbones nested under a method-specific key prefix, as in the PyTorch Lightning
checkpoints of the MedVLP methods (``{"state_dict": {...}, "epoch": ..., ...}``) or in
plain state dicts saved from the same models.

The prefix table maps each known prefix to the method it indicates; the prefix holding
the most backbone tensors wins. Keys outside it (text encoder, projection heads, momentum
encoders) are ignored and counted. DDP ``module.`` prefixes are stripped first. When no
known prefix fits, a single unambiguous prefix in front of a ResNet/ViT layout is used.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor

from benchmark.errors import CheckpointError
from models.architectures.resnet import looks_like_resnet
from models.architectures.vit import looks_like_vit
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp, strip_prefix

# prefix -> method it indicates. Longer prefixes are matched as exact key starts, so
# "gloria.img_encoder.model." and "img_encoder.model." do not collide.
KNOWN_PREFIXES: dict[str, str] = {
    "img_encoder_q.model.": "mgca",
    "img_encoder.model.": "convirt",
    "gloria.img_encoder.model.": "gloria",
    "visual.model.": "benchx",
    "encoder.": "mflag",
    "backbone.": "g2d",
}

_ANCHORS = ("conv1.weight", "patch_embed.proj.weight")
MAX_EXAMPLES = 10


def _backbone_like(sd: Mapping[str, Tensor]) -> bool:
    return looks_like_resnet(sd) or looks_like_vit(sd)


def known_prefix_scores(sd: Mapping[str, Tensor]) -> dict[str, int]:
    """Tensors under each known prefix whose stripped keys form a ResNet/ViT layout."""
    scores = {}
    for prefix in KNOWN_PREFIXES:
        sub = strip_prefix(sd, prefix)
        if sub and _backbone_like(sub):
            scores[prefix] = len(sub)
    return scores


def discover_prefixes(sd: Mapping[str, Tensor]) -> list[str]:
    """Non-empty prefixes P such that the keys under P form a ResNet/ViT layout."""
    out = []
    for k in sd:
        for anchor in _ANCHORS:
            if k.endswith(anchor) and len(k) > len(anchor):
                p = k[: -len(anchor)]
                if p.endswith(".") and p not in out and _backbone_like(strip_prefix(sd, p)):
                    out.append(p)
    return out


def method_for_nested_prefix(prefix: str) -> str | None:
    """A discovered prefix that ends with a distinctive known one (e.g.
    ``model.img_encoder_q.model.``) still indicates that method. The generic one-word
    prefixes (``encoder.``, ``backbone.``) are not used this way."""
    for known, method in KNOWN_PREFIXES.items():
        if known.count(".") > 1 and ("." + prefix).endswith("." + known):
            return method
    return None


def _is_lightning(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and "state_dict" in obj
        and any(k in obj for k in ("epoch", "global_step", "pytorch-lightning_version", "hyper_parameters"))
    )


class LightningPrefixed(CheckpointFormat):
    name = "lightning_prefixed"
    priority = 10
    description = (
        "backbone under a method prefix (MGCA, ConVIRT, GLoRIA, BenchX, M-FLAG, "
        "G2D), Lightning checkpoint or plain state dict"
    )
    source = "https://github.com/HKU-MedAI/MGCA (MGCA, ConVIRT, GLoRIA prefixes); https://github.com/yangzhou12/BenchX"

    def detect(self, obj: Any) -> bool:
        found = find_state_dict(obj)
        if found is None:
            return False
        sd = strip_ddp(found[0])
        if _backbone_like(sd):  # already unprefixed: a plain format's job
            return False
        return bool(known_prefix_scores(sd)) or bool(discover_prefixes(sd))

    def extract(self, obj: Any):
        sd, container = find_state_dict(obj)
        sd = strip_ddp(sd)
        scores = known_prefix_scores(sd)
        if scores:
            prefix = max(scores, key=lambda p: (scores[p], len(p)))
            method = KNOWN_PREFIXES[prefix]
            how = "known"
        else:
            candidates = discover_prefixes(sd)
            if len(candidates) != 1:
                raise CheckpointError(
                    "found backbone tensors under several unknown key prefixes "
                    f"({', '.join(repr(c) for c in candidates)}) and none of the known ones "
                    f"({', '.join(repr(p) for p in KNOWN_PREFIXES)}), so it is unclear which "
                    "is the image encoder. Save the wanted backbone's state dict on its own "
                    "(keys without prefix), or load it through a `module:function` factory."
                )
            prefix, how = candidates[0], "discovered"
            method = method_for_nested_prefix(prefix)
        backbone = strip_prefix(sd, prefix)
        ignored = [k for k in sd if not k.startswith(prefix)]
        info = {
            "container": container,
            "lightning": _is_lightning(obj),
            "prefix": prefix,
            "prefix_source": how,
            "method_hint": method,
            "other_prefixes": {p: n for p, n in scores.items() if p != prefix},
            "n_ignored": len(ignored),
            "ignored_examples": ignored[:MAX_EXAMPLES],
        }
        if isinstance(obj, Mapping):
            for k in ("epoch", "global_step"):
                if isinstance(obj.get(k), int):
                    info[k] = obj[k]
        return backbone, info


FORMAT = LightningPrefixed()  # this module's plug-in (benchmark/plugins.py)
