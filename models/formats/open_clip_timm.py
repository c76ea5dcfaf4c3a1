"""open_clip checkpoints whose image tower is a timm model (``visual.trunk.*`` + ``visual.head.*``),
the layout of mlfoundations/open_clip ``src/open_clip/timm_model.py`` ``TimmModel``, e.g.
BiomedCLIP (``microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224``
``open_clip_pytorch_model.bin``: its ``open_clip_config.json`` names the timm model
``vit_base_patch16_224`` with ``timm_pool: ""`` and ``timm_proj: linear``). Plain state dict or
an open_clip training checkpoint (``{"epoch", "state_dict": {"module.visual...": ...}}``).

The trunk is a timm ViT state dict already; it must be one (other timm trunks are refused).
Global feature: the trunk's own pooling with ``timm_pool: ""``, timm's default for a ViT,
i.e. the CLS token after the trunk's final norm, before ``visual.head.proj`` (the projection
into the joint space, left out and counted with the text tower ``text.*``). Input contract:
open_clip's default image statistics, OpenAI CLIP's mean / std (``src/open_clip/constants.py``
OPENAI_DATASET_MEAN / STD; BiomedCLIP's ``preprocess_cfg`` names the same values); the
``open_clip_config.json`` beside the weights is not read (a checkpoint file is read alone), so
a model whose config names other statistics needs ``load_encoder(..., input_contract=...)``.
"""

from __future__ import annotations

from typing import Any

from benchmark.errors import CheckpointError
from models.architectures.vit import looks_like_vit
from models.formats._vit_layouts import CLIP_MEAN, CLIP_STD, ignored_report, vit_contract
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp, strip_prefix

TRUNK = "visual.trunk."


def _state(obj: Any) -> tuple[dict, str | None] | None:
    found = find_state_dict(obj)
    return (strip_ddp(found[0]), found[1]) if found is not None else None


class OpenClipTimm(CheckpointFormat):
    name = "open_clip_timm"
    priority = 5  # before lightning_prefixed, which would take visual.trunk. for an unknown method prefix
    description = "open_clip checkpoint with a timm ViT image tower, e.g. BiomedCLIP (global feature: CLS)"
    source = "https://github.com/mlfoundations/open_clip"

    def detect(self, obj: Any) -> bool:
        found = _state(obj)
        return found is not None and any(k.startswith(TRUNK) for k in found[0])

    def extract(self, obj: Any):
        sd, container = _state(obj)
        trunk = strip_prefix(sd, TRUNK)
        if not looks_like_vit(trunk):
            raise CheckpointError(
                "this open_clip checkpoint's timm image tower (visual.trunk.*) is not a ViT (first keys: "
                f"{', '.join(list(trunk)[:6])}); only timm ViT trunks load into a registered architecture. "
                "Load other towers through a `module:function` factory."
            )
        text = [k for k in sd if k.startswith("text.")]
        info = {
            "container": container,
            "prefix": TRUNK,
            "method_hint": "open_clip",
            "global_feature": "CLS token after visual.trunk.norm (timm_pool ''), before visual.head.proj (not loaded)",
            "contract": vit_contract(trunk, CLIP_MEAN, CLIP_STD),
            "contract_origin": "format default (mlfoundations/open_clip src/open_clip/constants.py "
            "OPENAI_DATASET_MEAN / OPENAI_DATASET_STD; input size from the trunk's pos_embed)",
            "text_side": (
                f"open_clip text tower: {len(text)} tensors under text.* (e.g. a Hugging Face BERT under "
                "text.transformer.* and its projection text.proj*); joint space via visual.head.proj"
                if text
                else None
            ),
            **ignored_report(
                [k for k in sd if not k.startswith(TRUNK)],
                {
                    "visual.head (joint-space projection)": ("visual.head.",),
                    "text tower": ("text.",),
                    "logit_scale / logit_bias": ("logit_scale", "logit_bias"),
                },
            ),
        }
        return trunk, info


FORMAT = OpenClipTimm()  # this module's plug-in (benchmark/plugins.py)
