"""KAD checkpoints (Knowledge-enhanced Auto Diagnosis, github.com/xiaoman-zhang/KAD).

Layout, from the official code (``A3_CLIP/main.py`` and ``A3_CLIP/models/clip_tqn.py``):
``torch.save({"model": <query network TQN_Model>, "image_encoder": <ModelRes>, "text_encoder":
<CLP_clinical>, "optimizer": ..., "lr_scheduler": ..., "config": ..., "epoch": ...})``.
The image encoder ``ModelRes`` keeps the whole torchvision ResNet-50 as ``self.resnet`` AND
builds ``self.res_features = nn.Sequential(*list(self.resnet.children())[:-3])`` from the same
modules, so its state dict holds every backbone tensor twice: ``resnet.*`` (torchvision names,
including ``layer4`` and ``fc``) and ``res_features.{0,1,4,5,6}.*``; plus the per-patch
projection ``res_l1`` / ``res_l2`` (1024 -> 768). Its forward uses ``res_features`` only, so
``resnet.layer4`` / ``resnet.fc`` are ImageNet weights KAD never trained or used; the
benchmarked backbone is therefore the ``res_features`` one, renamed to torchvision's names and
loaded into the ``resnet50_layer3`` trunk (:mod:`models.architectures.resnet_trunk`).
``ModelRes512`` (``children()[:-2]``, for 512-px inputs) keeps layer4 (``res_features.7``)
and loads as a full ResNet-50. The two copies are checked to be identical. A DenseNet image
encoder (``ModelDense``, ``dense_features.*``) is refused with an explanation: no DenseNet is
registered. The text side (``text_encoder``: a BERT plus ``mlp_embed``) and the query network
(``model``) are counted; the harness's zero-shot tasks do not implement KAD's query network.
Input contract: ImageNet mean/std (the code's ``transforms.Normalize``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from benchmark.errors import CheckpointError
from models.architectures.resnet_trunk import SUFFIX
from models.encoder import InputContract
from models.formats._sequential_resnet import count_under, rename_children, trunk_arch
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, is_tensor_mapping, strip_ddp, strip_prefix

PREFIX = "res_features."
IMAGE_KEY = "image_encoder"  # where KAD's checkpoint keeps the image encoder
MAX_EXAMPLES = 10


def _tensors(mapping: Mapping[str, Any]) -> dict[str, Tensor]:
    return strip_ddp({k: v for k, v in mapping.items() if isinstance(v, Tensor)})


def image_state(obj: Any) -> tuple[dict[str, Tensor], str | None] | None:
    """(KAD image-encoder tensors, where they were) of a checkpoint, or None.

    The full checkpoint keeps them under ``image_encoder``; a re-saved image encoder on its own
    is recognised by its two copies of the backbone (``resnet.*`` and ``res_features.*``)."""
    if isinstance(obj, Mapping) and is_tensor_mapping(obj.get(IMAGE_KEY)):
        state = _tensors(obj[IMAGE_KEY])
        if "res_features.0.weight" in state or any(k.startswith("dense_features.") for k in state):
            return state, IMAGE_KEY
        return None
    found = find_state_dict(obj)
    if found is None:
        return None
    state = strip_ddp(found[0])
    if "res_features.0.weight" in state and "resnet.conv1.weight" in state:
        return state, found[1]
    return None


def _same(a: Tensor, b: Tensor) -> bool:
    if a.shape != b.shape:
        return False
    return True if (a.is_meta or b.is_meta) else bool(torch.equal(a, b))


class KAD(CheckpointFormat):
    name = "kad"
    priority = 5  # before lightning_prefixed: the resnet.* copy would otherwise be found as an unknown prefix
    description = "KAD image encoder (image_encoder: res_features.N + resnet.* copy)"
    source = "https://github.com/xiaoman-zhang/KAD"

    def detect(self, obj: Any) -> bool:
        return image_state(obj) is not None

    def extract(self, obj: Any):
        state, container = image_state(obj)
        if any(k.startswith("dense_features.") for k in state):
            raise CheckpointError(
                "this is KAD's DenseNet-121 image encoder (ModelDense: dense_features.*, dense_l1, dense_l2); no "
                "DenseNet architecture is registered, so it cannot be scored. Wrap it in a `module:function` factory "
                "returning an Encoder, or use KAD's ResNet-50 release"
            )
        backbone = rename_children(state, PREFIX)
        arch = trunk_arch(backbone, f"{container + '.' if container else ''}{PREFIX}*")
        copy = strip_prefix(state, "resnet.")
        differing = [k for k, v in backbone.items() if k in copy and not _same(v, copy[k])]
        if differing:
            raise CheckpointError(
                f"the image encoder's two copies of the backbone differ in {len(differing)} tensors (e.g. "
                f"res_features.* vs resnet.{differing[0]}); in KAD's code they are the same modules, so the file was "
                "edited after training. KAD's forward uses res_features.*; re-save the checkpoint from KAD's code"
            )
        unused = [f"resnet.{k}" for k in copy if k not in backbone]
        ignored = [k for k in state if not k.startswith(PREFIX)]
        info: dict[str, Any] = {
            "arch": arch,
            "container": container,
            "prefix": PREFIX,
            "prefix_source": "known",
            "renamed": "res_features.{0,1,4,5,6,7} -> conv1, bn1, layer1, layer2, layer3, layer4",
            "variant": "ModelRes (layer3 features, 224 px)"
            if arch.endswith(SUFFIX)
            else "ModelRes512 (layer4 features, 512 px)",
            "method_hint": "kad",
            "n_ignored": len(ignored),
            "ignored_examples": ignored[:MAX_EXAMPLES],
            "ignored_by_prefix": count_under(state, (PREFIX,)),
            "duplicate_copy_checked": sum(1 for k in backbone if k in copy),
            "unused_by_kad": len(unused),
            "unused_by_kad_examples": unused[:MAX_EXAMPLES],
            "contract": InputContract.imagenet(),
            "contract_origin": "KAD code: transforms.Normalize(ImageNet mean/std)",
            "text_side": None,
        }
        if isinstance(obj, Mapping):
            text = obj.get("text_encoder")
            if is_tensor_mapping(text):
                bert = sum(1 for k in text if str(k).startswith("bert_model."))
                query = len(obj["model"]) if is_tensor_mapping(obj.get("model")) else 0
                info["text_side"] = (
                    f"KAD text encoder (text_encoder: {len(text)} tensors, {bert} of them bert_model.*) and query "
                    f"network (model: {query} tensors); the harness's zero-shot tasks do not implement KAD's query "
                    "network, so they do not apply"
                )
            if isinstance(obj.get("epoch"), int):
                info["epoch"] = obj["epoch"]
        return backbone, info


FORMAT = KAD()  # this module's plug-in (benchmark/plugins.py)
