"""OpenAI CLIP state dicts with a ViT image tower (``visual.conv1.weight``,
``visual.class_embedding``, ``visual.positional_embedding``, ``visual.ln_pre.*``,
``visual.transformer.resblocks.N.*``, ``visual.ln_post.*``, ``visual.proj``), the layout of
openai/CLIP ``clip/model.py``, which CheXzero (rajpurkarlab/CheXzero ``model.py``, a ViT-B/32
at 224 fine-tuned from CLIP and saved with ``torch.save(model.state_dict())``) keeps. Plain or
nested under ``state_dict`` / ``model`` / ..., DDP prefixes stripped.

The visual tower is renamed into timm's ViT layout (:func:`~models.formats._vit_layouts.clip_visual_to_timm`)
and built as a pre-norm, QuickGELU, LayerNorm-eps-1e-5 ViT (``vit_base_patch32_clip_quickgelu_224``
and friends, inferred from the tensors). Global feature: the CLS token after ``ln_post``,
before ``visual.proj`` (the projection into the joint image-text space, left out and counted,
as is the text tower). Input contract: OpenAI CLIP's mean / std (``clip/clip.py``
``_transform``) at the size of the position embeddings.

Not told apart by the tensors, and documented in docs/protocol.md: CheXzero trained on 0-255
pixels normalised with mean 101.48761 / std 83.43944 (``train.py`` ``load_data``; 0.39799 /
0.32721 in [0, 1] units), not CLIP's statistics; open_clip towers with this layout but GELU
(e.g. LAION-trained ``ViT-B-32``) would be computed with OpenAI's QuickGELU. Pass an input
contract (``load_encoder(..., input_contract=...)``) for the former. OpenAI's ResNet towers
(``visual.layer1``, ``visual.attnpool``) are refused: their stem and attention pooling are not
a torchvision ResNet.
"""

from __future__ import annotations

from typing import Any

from benchmark.errors import CheckpointError
from models.formats._vit_layouts import CLIP_MEAN, CLIP_STD, clip_visual_to_timm, ignored_report, vit_contract
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp, strip_prefix

TOWER = "visual."
TEXT_PREFIXES = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection")
GLOBAL_FEATURE = "CLS token after ln_post (timm name: norm), before visual.proj (not loaded)"


def _state(obj: Any) -> tuple[dict, str | None] | None:
    found = find_state_dict(obj)
    return (strip_ddp(found[0]), found[1]) if found is not None else None


def clip_text_side(keys: list[str]) -> str | None:
    text = [k for k in keys if k.startswith(TEXT_PREFIXES)]
    if not text:
        return None
    return (
        f"OpenAI CLIP text transformer: {len(text)} tensors (token_embedding, transformer.resblocks.*, ln_final, "
        "text_projection); image and text meet in the joint space of visual.proj and text_projection"
    )


class OpenAIClip(CheckpointFormat):
    name = "openai_clip"
    priority = 6  # before lightning_prefixed, whose prefix discovery would misread visual.layer1 of a ResNet tower
    description = "OpenAI CLIP / CheXzero state dict, ViT image tower (global feature: CLS after ln_post)"
    source = "https://github.com/openai/CLIP"

    def detect(self, obj: Any) -> bool:
        found = _state(obj)
        return found is not None and f"{TOWER}conv1.weight" in found[0]

    def extract(self, obj: Any):
        sd, container = _state(obj)
        if any(k.startswith((f"{TOWER}layer1.", f"{TOWER}attnpool.")) for k in sd):
            raise CheckpointError(
                "this is an OpenAI CLIP checkpoint with a ResNet image tower (visual.layer1.*, visual.attnpool.*): "
                "its 3-convolution stem, average-pool downsampling and attention pooling are not a torchvision "
                "ResNet, so no registered architecture can load it. Use a CLIP ViT checkpoint, or load the tower "
                "through a `module:function` factory that builds OpenAI's ModifiedResNet."
            )
        if f"{TOWER}class_embedding" not in sd:
            raise CheckpointError(
                "found visual.conv1.weight but no visual.class_embedding: not an OpenAI CLIP ViT image tower "
                f"(visual.* keys: {', '.join(sorted(k for k in sd if k.startswith(TOWER))[:8])})"
            )
        backbone, left_out = clip_visual_to_timm(strip_prefix(sd, TOWER))
        ignored = [k for k in sd if not k.startswith(TOWER)] + [TOWER + k for k in left_out]
        info = {
            "container": container,
            "prefix": TOWER,
            "method_hint": "clip",
            "renamed": "OpenAI CLIP visual transformer -> timm ViT names",
            "global_feature": GLOBAL_FEATURE,
            "contract": vit_contract(backbone, CLIP_MEAN, CLIP_STD),
            "contract_origin": "format default (openai/CLIP clip/clip.py _transform: Normalize(CLIP mean, std); "
            "input size from the checkpoint's positional_embedding)",
            "text_side": clip_text_side(list(sd)),
            **ignored_report(
                ignored,
                {
                    "visual.proj (joint-space projection)": (f"{TOWER}proj",),
                    "text tower": TEXT_PREFIXES,
                    "logit_scale": ("logit_scale",),
                },
            ),
        }
        return backbone, info


FORMAT = OpenAIClip()  # this module's plug-in (benchmark/plugins.py)
