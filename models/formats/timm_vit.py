"""A timm-style ViT state dict (``cls_token, pos_embed, patch_embed.proj.*, blocks.N.*,
norm.*``), plain or nested under ``state_dict``/``model``/..., DDP prefixes stripped."""

from __future__ import annotations

from typing import Any

from models.architectures.vit import looks_like_vit
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp


class TimmViT(CheckpointFormat):
    name = "timm_vit"
    priority = 30
    description = "timm-style ViT state dict (global feature: CLS token)"
    source = "https://github.com/huggingface/pytorch-image-models (timm vision_transformer.py)"

    def detect(self, obj: Any) -> bool:
        found = find_state_dict(obj)
        return found is not None and looks_like_vit(strip_ddp(found[0]))

    def extract(self, obj: Any):
        sd, container = find_state_dict(obj)
        return strip_ddp(sd), {"container": container, "prefix": ""}


FORMAT = TimmViT()  # this module's plug-in (benchmark/plugins.py)
