"""Helpers shared by the ViT checkpoint formats (not a plug-in: the name starts with ``_``).

* :func:`clip_visual_to_timm`: OpenAI CLIP's visual-transformer names (``clip/model.py``
  ``VisionTransformer``, also PTUnifier's copy) -> the timm ViT names of
  :class:`~models.architectures.vit.ViTEncoder`;
* :func:`vit_contract`: a format's input contract with the ViT's input size read from the
  checkpoint's position embeddings;
* :func:`ignored_report`: the load-report entries for the tensors a format leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from torch import Tensor

from models.architectures.vit import vit_input_size
from models.encoder import InputContract

# OpenAI CLIP's image statistics (openai/CLIP clip/clip.py ``_transform``; open_clip's
# OPENAI_DATASET_MEAN / OPENAI_DATASET_STD)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

MAX_EXAMPLES = 10

_CLIP_TOP = {
    "conv1.weight": "patch_embed.proj.weight",
    "class_embedding": "cls_token",
    "positional_embedding": "pos_embed",
}
_CLIP_NORMS = {"ln_pre": "norm_pre", "ln_post": "norm"}
_CLIP_BLOCK = {
    "ln_1.weight": "norm1.weight",
    "ln_1.bias": "norm1.bias",
    "attn.in_proj_weight": "attn.qkv.weight",
    "attn.in_proj_bias": "attn.qkv.bias",
    "attn.out_proj.weight": "attn.proj.weight",
    "attn.out_proj.bias": "attn.proj.bias",
    "ln_2.weight": "norm2.weight",
    "ln_2.bias": "norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_CLIP_BLOCK_KEY = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$")


def clip_visual_to_timm(visual: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a CLIP visual transformer's tensors (keys without the tower's prefix, e.g.
    ``conv1.weight``, ``transformer.resblocks.0.attn.in_proj_weight``) to timm's ViT names.

    ``class_embedding`` (D,) becomes ``cls_token`` (1, 1, D) and ``positional_embedding``
    (N, D) becomes ``pos_embed`` (1, N, D); ``in_proj_weight`` is timm's ``qkv.weight`` as is
    (both stack query, key, value in that order). ``proj`` (the projection into the joint
    image-text space) is not part of the backbone and is returned by name in the second
    value. A tensor this layout does not know keeps its own name, so strict loading
    names it as unexpected."""
    out: dict[str, Tensor] = {}
    left_out: list[str] = []
    for key, value in visual.items():
        if key == "proj":
            left_out.append(key)
            continue
        if key in _CLIP_TOP:
            new = _CLIP_TOP[key]
            if new == "cls_token" and value.dim() == 1:
                value = value.reshape(1, 1, -1)
            elif new == "pos_embed" and value.dim() == 2:
                value = value.unsqueeze(0)
            out[new] = value
            continue
        head, _, rest = key.partition(".")
        if head in _CLIP_NORMS and rest in ("weight", "bias"):
            out[f"{_CLIP_NORMS[head]}.{rest}"] = value
            continue
        match = _CLIP_BLOCK_KEY.match(key)
        if match and match.group(2) in _CLIP_BLOCK:
            out[f"blocks.{match.group(1)}.{_CLIP_BLOCK[match.group(2)]}"] = value
            continue
        out[key] = value
    return out, left_out


def vit_contract(state_dict: Mapping[str, Tensor], mean: tuple[float, ...], std: tuple[float, ...]) -> InputContract:
    """The contract a ViT release was trained with: its mean / std, 3 channels, and the input
    size its (timm-named) position embeddings were trained at (the fixed classification
    input; ``None`` when unreadable, then loading reports the mismatch)."""
    return InputContract(mean=mean, std=std, channels=3, input_size=vit_input_size(state_dict))


def ignored_report(keys: Iterable[str], parts: Mapping[str, tuple[str, ...]]) -> dict:
    """``n_ignored``, ``ignored_examples`` (as the other formats report them) and
    ``ignored_parts``: how many of ``keys`` fall under each named group of key prefixes
    (``parts``: label -> prefixes; the rest counts as ``"other"``)."""
    keys = list(keys)
    counts: dict[str, int] = {}
    for key in keys:
        label = next((name for name, prefixes in parts.items() if key.startswith(prefixes)), "other")
        counts[label] = counts.get(label, 0) + 1
    return {"n_ignored": len(keys), "ignored_examples": keys[:MAX_EXAMPLES], "ignored_parts": counts}
