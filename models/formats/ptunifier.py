"""PTUnifier checkpoints (zhjohnchan/PTUnifier): PyTorch Lightning checkpoints of
``ptunifier/models/ptunifier_module.py`` ``PTUnifierTransformerSS``, whose image encoder
``vision_encoder`` is the CLIP model of ``ptunifier/models/vision_encoders/clip_model.py`` (a
copy of OpenAI CLIP's code by way of METER): keys ``vision_encoder.visual.conv1.weight``,
``vision_encoder.visual.class_embedding``, ``vision_encoder.visual.positional_embedding``,
``vision_encoder.visual.ln_pre.*``, ``vision_encoder.visual.transformer.resblocks.N.*``,
``vision_encoder.visual.ln_post.*`` (no ``proj``), beside the text encoder ``language_encoder.*``
(RoBERTa), the fusion layers ``multi_modal_*`` and the pretraining heads.

The released model (``run_scripts/pretrain.sh``: ``clip16``, ``image_size=288``) is a CLIP
ViT-B/16 with position embeddings for 288 x 288 and 11 blocks: that copy builds ``layers - 1``
residual blocks (``Transformer.__init__``), dropping CLIP's last one. The tower is renamed like
OpenAI CLIP's (:func:`~models.formats._vit_layouts.clip_visual_to_timm`) and built as
``vit_base_patch16_clip_quickgelu_288_depth11``. Global feature: the CLS token after
``ln_post``, as PTUnifier's ``forward_trans`` returns it. Input contract: CLIP's mean / std
(``ptunifier/datasets/transforms/transform.py`` ``clip_transform``) at the size of the position
embeddings. PTUnifier's Swin image encoders (``swin32_*`` configs) are refused.
"""

from __future__ import annotations

from typing import Any, Mapping

from benchmark.errors import CheckpointError
from models.formats._vit_layouts import CLIP_MEAN, CLIP_STD, clip_visual_to_timm, ignored_report, vit_contract
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp, strip_prefix

TOWER = "vision_encoder.visual."
TEXT = ("language_encoder.", "multi_modal_language_")
FUSION = ("multi_modal_", "modality_type_embeddings.")


def _state(obj: Any) -> tuple[dict, str | None] | None:
    found = find_state_dict(obj)
    return (strip_ddp(found[0]), found[1]) if found is not None else None


def _config(obj: Any) -> dict:
    """The run's config from a Lightning checkpoint's ``hyper_parameters`` (``save_hyperparameters()``
    of ``__init__(self, config)``), when present."""
    hp = obj.get("hyper_parameters") if isinstance(obj, Mapping) else None
    config = hp.get("config") if isinstance(hp, Mapping) else None
    return dict(config) if isinstance(config, Mapping) else {}


class PTUnifier(CheckpointFormat):
    name = "ptunifier"
    priority = 4
    description = "PTUnifier Lightning checkpoint, CLIP ViT image encoder (vision_encoder.visual.*)"
    source = "https://github.com/zhjohnchan/PTUnifier"

    def detect(self, obj: Any) -> bool:
        found = _state(obj)
        if found is None:
            return False
        sd = found[0]
        # the CLIP tower's own key, or (to refuse a Swin tower by name) PTUnifier's module names
        return f"{TOWER}conv1.weight" in sd or (
            any(k.startswith("vision_encoder.") for k in sd)
            and any(k.startswith(("language_encoder.", "multi_modal_")) for k in sd)
        )

    def extract(self, obj: Any):
        sd, container = _state(obj)
        if f"{TOWER}conv1.weight" not in sd or f"{TOWER}class_embedding" not in sd:
            found = sorted(k for k in sd if k.startswith("vision_encoder."))[:6]
            raise CheckpointError(
                "this PTUnifier checkpoint's image encoder is not the CLIP ViT of the released models "
                f"(vision_encoder.* keys: {', '.join(found)}); its Swin encoders are not supported. Load it "
                "through a `module:function` factory."
            )
        backbone, left_out = clip_visual_to_timm(strip_prefix(sd, TOWER))
        text = [k for k in sd if k.startswith(TEXT)]
        config = _config(obj)
        info = {
            "container": container,
            "prefix": TOWER,
            "method_hint": "ptunifier",
            "renamed": "CLIP visual transformer (PTUnifier's copy) -> timm ViT names",
            "global_feature": "CLS token after ln_post (timm name: norm)",
            "contract": vit_contract(backbone, CLIP_MEAN, CLIP_STD),
            "contract_origin": "format default (zhjohnchan/PTUnifier ptunifier/datasets/transforms/transform.py "
            "clip_transform: Normalize(CLIP mean, std); input size from positional_embedding)",
            "text_side": (
                f"PTUnifier language encoder and fusion: {len(text)} text tensors (language_encoder.*, a RoBERTa) and "
                f"{sum(k.startswith(FUSION) for k in sd)} fusion tensors (multi_modal_*); no CLIP-style joint "
                "embedding for the zero-shot tasks"
                if text
                else None
            ),
            **ignored_report(
                [k for k in sd if not k.startswith(TOWER)] + [TOWER + k for k in left_out],
                {
                    "language encoder": TEXT,
                    "fusion layers": FUSION,
                    "CLIP text embeddings left in vision_encoder (unused)": ("vision_encoder.",),
                },
            ),
        }
        for key in ("vit", "image_size", "patch_size"):
            if key in config:
                info[f"config_{key}"] = config[key]
        if isinstance(obj, Mapping):
            for key in ("epoch", "global_step"):
                if isinstance(obj.get(key), int):
                    info[key] = obj[key]
        return backbone, info


FORMAT = PTUnifier()  # this module's plug-in (benchmark/plugins.py)
