"""REFERS checkpoints (funnyzhou/REFERS): a ViT-B/16 in the layout of jeonsworld/ViT-pytorch
``models/modeling.py``, which REFERS copies (``Pre-train/refers/modules/VisionTransformer.py``,
``Fine-tune/*/models/modeling.py``): ``transformer.embeddings.patch_embeddings.*``,
``transformer.embeddings.position_embeddings``, ``transformer.embeddings.cls_token``,
``transformer.encoder.layer.N.{attention_norm, attn.query, attn.key, attn.value, attn.out,
ffn_norm, ffn.fc1, ffn.fc2}.*`` and ``transformer.encoder.encoder_norm.*``. The released
``refers_checkpoint.pth`` is a flat state dict of these (the fine-tuning code keeps the keys
its ``VisionTransformer`` has); a pretraining checkpoint nests them under a prefix (e.g.
``visual.vit.``) beside the fusion and text modules. Either is found by the position of
``transformer.embeddings.patch_embeddings.weight``.

Renamed into timm's ViT layout: ``query`` / ``key`` / ``value`` are stacked into ``qkv`` (timm
splits q, k, v in that order, each by heads, as ViT-pytorch does), ``attention_norm`` ->
``norm1``, ``ffn_norm`` -> ``norm2``, ``ffn`` -> ``mlp``, ``attn.out`` -> ``attn.proj``,
``encoder_norm`` -> ``norm``. ViT-pytorch's blocks are timm's (pre-norm residual blocks,
LayerNorm eps 1e-6, exact GELU, biased patch convolution), so it is ``vit_base_patch16_224``.
Global feature: the CLS token after ``encoder_norm``, what REFERS' classifier reads
(``logits = self.head(x[:, 0])``). Input contract: ImageNet mean / std at 224
(``Fine-tune/*/utils/data_utils.py``). ViT-pytorch's R50 hybrid is refused.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from benchmark.errors import CheckpointError
from models.encoder import IMAGENET_MEAN, IMAGENET_STD
from models.formats._vit_layouts import ignored_report, vit_contract
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp

ANCHOR = "transformer.embeddings.patch_embeddings.weight"
_TOP = {
    "embeddings.patch_embeddings.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.bias": "patch_embed.proj.bias",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.cls_token": "cls_token",
    "encoder.encoder_norm.weight": "norm.weight",
    "encoder.encoder_norm.bias": "norm.bias",
}
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_BLOCK = {
    "attention_norm": "norm1",
    "ffn_norm": "norm2",
    "ffn.fc1": "mlp.fc1",
    "ffn.fc2": "mlp.fc2",
    "attn.out": "attn.proj",
}
TEXT = ("textual.", "contrastive_bert.", "backward_textual.")


def _state(obj: Any) -> tuple[dict, str | None] | None:
    found = find_state_dict(obj)
    return (strip_ddp(found[0]), found[1]) if found is not None else None


def vit_pytorch_to_timm(vision: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ViT-pytorch tensors (keys after ``transformer.``) to timm's names. A block whose
    query, key and value are not all present keeps their names, so strict loading lists them
    as unexpected and its ``qkv`` as missing; unknown keys keep their names too."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in vision.items():
        if key in _TOP:
            out[_TOP[key]] = value
            continue
        match = _LAYER.match(key)
        if match:
            block, rest = match.groups()
            module, _, param = rest.rpartition(".")
            if module in ("attn.query", "attn.key", "attn.value"):
                qkv.setdefault((block, param), {})[module.split(".")[1]] = value
                continue
            if module in _BLOCK:
                out[f"blocks.{block}.{_BLOCK[module]}.{param}"] = value
                continue
        out["transformer." + key] = value
    for (block, param), parts in qkv.items():
        if set(parts) == {"query", "key", "value"}:
            out[f"blocks.{block}.attn.qkv.{param}"] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
        else:
            for name, value in parts.items():
                out[f"transformer.encoder.layer.{block}.attn.{name}.{param}"] = value
    return out


class REFERSViT(CheckpointFormat):
    name = "refers"
    priority = 7
    description = "REFERS / ViT-pytorch ViT-B/16 (transformer.embeddings.*, transformer.encoder.layer.N.*)"
    source = "https://github.com/funnyzhou/REFERS"

    def detect(self, obj: Any) -> bool:
        found = _state(obj)
        return found is not None and any(k.endswith(ANCHOR) for k in found[0])

    def extract(self, obj: Any):
        sd, container = _state(obj)
        prefixes = sorted({k[: -len(ANCHOR)] for k in sd if k.endswith(ANCHOR)})
        if len(prefixes) != 1:
            raise CheckpointError(
                f"found ViT-pytorch image towers under several prefixes ({', '.join(repr(p) for p in prefixes)}); "
                "save the wanted tower's state dict on its own, or load it through a `module:function` factory"
            )
        prefix = prefixes[0]
        tower = prefix + "transformer."
        vision = {k[len(tower) :]: v for k, v in sd.items() if k.startswith(tower)}
        if any(k.startswith("embeddings.hybrid_model.") for k in vision):
            raise CheckpointError(
                "this ViT-pytorch checkpoint is the R50+ViT hybrid (transformer.embeddings.hybrid_model.*), which no "
                "registered architecture builds; load it through a `module:function` factory"
            )
        text = [k for k in sd if k.startswith(TEXT)]
        info = {
            "container": container,
            "prefix": tower,
            "method_hint": "refers",
            "renamed": "ViT-pytorch names -> timm ViT names (query/key/value stacked into qkv)",
            "global_feature": "CLS token after encoder_norm (timm name: norm)",
            "contract": None,
            "contract_origin": "format default (funnyzhou/REFERS Fine-tune/*/utils/data_utils.py: Normalize(ImageNet "
            "mean, std); input size from position_embeddings)",
            "text_side": (
                f"REFERS report generation and contrastive text modules: {len(text)} tensors (textual.*, "
                "contrastive_bert.*); the zero-shot tasks do not read them"
                if text
                else None
            ),
            **ignored_report(
                [k for k in sd if not k.startswith(tower)],
                {"classification head (head.*)": ("head.", prefix + "head."), "text modules": TEXT},
            ),
        }
        backbone = vit_pytorch_to_timm(vision)
        info["contract"] = vit_contract(backbone, IMAGENET_MEAN, IMAGENET_STD)
        return backbone, info


FORMAT = REFERSViT()  # this module's plug-in (benchmark/plugins.py)
