"""MedCLIP checkpoints (github.com/RyanWangZf/MedCLIP), the ``pytorch_model.bin`` of its
``medclip-resnet`` and ``medclip-vit`` releases: the state dict of ``MedCLIPModel``.

Layout, from the official code (``medclip/modeling_medclip.py``, ``medclip/constants.py``):

* ``vision_model.model.*``: the image backbone.
  ``MedCLIPVisionModel`` (ResNet variant) holds a torchvision ResNet-50 whose ``fc`` is replaced by
  the 512-d projection ``nn.Linear(2048, 512, bias=False)``: ``vision_model.model.{conv1, bn1,
  layer1..layer4}.*`` plus ``vision_model.model.fc.weight``.
  ``MedCLIPVisionModelViT`` (the "ViT" release is a Swin) holds
  ``AutoModel.from_pretrained("microsoft/swin-tiny-patch4-window7-224")``, a transformers ``SwinModel``
  (``vision_model.model.embeddings.*``, ``encoder.layers.N.blocks.M.*``, ``layernorm.*``; saved with
  transformers 4.23-4.24, so ``relative_position_index`` buffers are in the file), and the projection
  ``vision_model.projection_head.weight`` (768 -> 512, no bias).
* ``text_model.model.*``: a BERT (Bio_ClinicalBERT), ``text_model.projection_head.weight`` (768 ->
  512), and ``logit_scale``.

The ResNet loads into :class:`~models.architectures.resnet.ResNetEncoder` (``fc`` ignored as a head);
the Swin into :class:`~models.architectures.hf_vision.HFVisionEncoder` built from the
swin-tiny configuration written in code (``hf_swin_tiny_patch4_window7_224``); the recomputed
``relative_position_index`` buffers are skipped. Global features are taken before the
projections (ResNet: average pool of layer4, 2,048-d; Swin: ``pooler_output``, 768-d). The text
side and the projections are counted, not loaded.

Input contract (MedCLIP's code: ``constants.IMG_MEAN`` / ``IMG_STD`` in ``MedCLIPFeatureExtractor``
and the datasets' ``transforms.Normalize``): a grey image normalised with mean 0.5862785803043838,
std 0.27950088968644304, then repeated to 3 channels by the vision model's forward; the same as
normalising the 3 replicated channels. Swin: MedCLIP's 224 px (``constants.IMG_SIZE``, the
Swin's own image size); ResNet: any size (the benchmark's CNN protocol).
"""

from __future__ import annotations

import re
from typing import Any

from benchmark.errors import CheckpointError
from models.encoder import InputContract
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp, strip_prefix

VISION = "vision_model.model."
SWIN_ANCHOR = "embeddings.patch_embeddings.projection.weight"
RESNET_ANCHOR = "conv1.weight"
IMG_MEAN = 0.5862785803043838  # medclip/constants.py
IMG_STD = 0.27950088968644304
MAX_EXAMPLES = 10
_BERT_LAYER = re.compile(r"^text_model\.model\.encoder\.layer\.(\d+)\.")


def medclip_state(obj: Any) -> dict | None:
    found = find_state_dict(obj)
    if found is None:
        return None
    sd = strip_ddp(found[0])
    has_vision = VISION + SWIN_ANCHOR in sd or VISION + RESNET_ANCHOR in sd
    has_text = "text_model.projection_head.weight" in sd or "logit_scale" in sd
    return sd if has_vision and has_text else None


def describe_text(sd: dict) -> str | None:
    bert = [k for k in sd if k.startswith("text_model.model.")]
    if not bert:
        return None
    layers = {int(m.group(1)) for m in map(_BERT_LAYER.match, bert) if m}
    proj = "text_model.projection_head.weight"
    head = f", projection {tuple(sd[proj].shape)}" if proj in sd else ""
    return (
        f"BERT text tower ({len(layers)} layers) under text_model.model.* ({len(bert)} tensors{head}); not used "
        "(the harness's zero-shot tasks do not implement MedCLIP's text side)"
    )


class MedCLIP(CheckpointFormat):
    name = "medclip"
    priority = 5  # before lightning_prefixed, which would take vision_model.model. as an unknown prefix
    description = "MedCLIP (vision_model.model.*: ResNet-50 or transformers Swin; text_model.*)"
    source = "https://github.com/RyanWangZf/MedCLIP"

    def detect(self, obj: Any) -> bool:
        return medclip_state(obj) is not None

    def extract(self, obj: Any):
        from models.architectures.hf_vision import (
            RECOMPUTED_BUFFERS,
            SWIN_CONFIGS,
            infer_swin,
            split_derived_buffers,
            unknown_swin_error,
        )

        sd = medclip_state(obj)
        backbone = strip_prefix(sd, VISION)
        ignored = [k for k in sd if not k.startswith(VISION)]
        info: dict[str, Any] = {
            "prefix": VISION,
            "prefix_source": "known",
            "method_hint": "medclip",
            "n_ignored": len(ignored),
            "ignored_examples": ignored[:MAX_EXAMPLES],
            "text_side": describe_text(sd),
        }
        if SWIN_ANCHOR in backbone:
            arch, found = infer_swin(backbone)
            if arch is None:
                raise unknown_swin_error(found)
            # the recomputed relative_position_index buffers that transformers 4.2x saved
            backbone, skipped = split_derived_buffers(RECOMPUTED_BUFFERS["swin"], backbone)
            size = int(SWIN_CONFIGS[arch]["image_size"])
            info.update(
                {
                    "variant": "MedCLIPVisionModelViT (transformers SwinModel)",
                    "arch": arch,
                    "buffers_skipped": skipped,
                    "global_feature": "Swin pooler_output, before vision_model.projection_head",
                    "contract": InputContract(mean=(IMG_MEAN,) * 3, std=(IMG_STD,) * 3, channels=3, input_size=size),
                }
            )
        elif RESNET_ANCHOR in backbone:
            info.update(
                {
                    "variant": "MedCLIPVisionModel (torchvision ResNet, fc = 512-d projection)",
                    "global_feature": "ResNet layer4 average pool, before vision_model.model.fc",
                    "contract": InputContract(mean=(IMG_MEAN,) * 3, std=(IMG_STD,) * 3, channels=3),
                }
            )
        else:  # pragma: no cover - detect() requires one of the anchors
            raise CheckpointError("no MedCLIP vision backbone under vision_model.model.")
        info["contract_origin"] = (
            "MedCLIP code (medclip/constants.py IMG_MEAN / IMG_STD on the grey image, repeated to 3 channels)"
        )
        return backbone, info


FORMAT = MedCLIP()  # this module's plug-in (benchmark/plugins.py)
