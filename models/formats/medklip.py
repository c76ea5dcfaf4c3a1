"""MedKLIP checkpoints (official release and BenchX's re-pretrained ``MedKLIP.pth``).

Layout, from the official code (github.com/MediaBrain-SJTU/MedKLIP, ``PreTrain_MedKLIP/
models/model_MedKLIP.py`` and ``train_MedKLIP.py``): ``torch.save({"model":
model.state_dict(), "optimizer": ..., "lr_scheduler": ..., "config": ..., "epoch": ...})`` of
the model wrapped in ``nn.DataParallel`` (keys start with ``module.``). The image side is
``res_features = nn.Sequential(*list(resnet.children())[:-3])``: ResNet children 0-6 (conv1,
bn1, relu, maxpool, layer1, layer2, layer3), so its tensors are ``res_features.{0,1,4,5,6}.*``
and there is NO layer4: MedKLIP's patch features are layer3's (1024 channels for ResNet-50),
projected per patch by ``res_l1`` / ``res_l2`` to the 256-d query space of its transformer
decoder (``decoder.*``, ``disease_embedding_layer``, ``cl_fc``, ``classifier``). BenchX's
re-pretrained MedKLIP uses the same code, and its converter reads ``module.res_features``
(github.com/yangzhou12/BenchX, ``preprocess/model_converters/medvlm2mmseg.py``).

The backbone is renamed to torchvision's names and loaded into the registered
``<resnet>_layer3`` trunk (:mod:`models.architectures.resnet_trunk`), so every pretrained
tensor is loaded and nothing random is added; ``res_l1``/``res_l2`` and the decoder are
counted as ignored. The BERT MedKLIP uses for its query embeddings is not stored in the file
(they are computed from a separate BERT at start-up), so the file has no text side. Input
contract: ImageNet mean/std (the code's ``transforms.Normalize``), at 224 px.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.errors import CheckpointError
from models.architectures.resnet_trunk import SUFFIX
from models.encoder import InputContract
from models.formats._sequential_resnet import count_under, rename_children, trunk_arch
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp

PREFIX = "res_features."
MAX_EXAMPLES = 10


def looks_like_medklip(state: Mapping[str, Any]) -> bool:
    """``res_features.N`` ResNet children plus MedKLIP's per-patch projection, and no
    ``resnet.*`` copy of the backbone (that is KAD's image encoder, see :mod:`.kad`)."""
    return (
        "res_features.0.weight" in state
        and "res_features.4.0.conv1.weight" in state
        and "res_l1.weight" in state
        and "res_l2.weight" in state
        and not any(k.startswith("resnet.") for k in state)
    )


class MedKLIP(CheckpointFormat):
    name = "medklip"
    priority = 5  # before lightning_prefixed, whose prefix discovery must not see res_features.N first
    description = "MedKLIP (res_features.N ResNet children; official and BenchX releases)"
    source = "https://github.com/MediaBrain-SJTU/MedKLIP"

    def detect(self, obj: Any) -> bool:
        found = find_state_dict(obj)
        return found is not None and looks_like_medklip(strip_ddp(found[0]))

    def extract(self, obj: Any):
        sd, container = find_state_dict(obj)
        ddp = any(k.startswith("module.") for k in sd)
        sd = strip_ddp(sd)
        backbone = rename_children(sd, PREFIX)
        arch = trunk_arch(backbone, f"{PREFIX}*")
        config = obj.get("config") if isinstance(obj, Mapping) and isinstance(obj.get("config"), Mapping) else {}
        declared = config.get("res_base_model")
        if isinstance(declared, str) and arch.removesuffix(SUFFIX) != declared:
            raise CheckpointError(
                f"the checkpoint's config says res_base_model={declared!r} but the tensors under {PREFIX}* are a "
                f"{arch}; the file is inconsistent (re-save it from the code that trained it)"
            )
        ignored = [k for k in sd if not k.startswith(PREFIX)]
        info: dict[str, Any] = {
            "arch": arch,
            "container": container,
            "prefix": ("module." if ddp else "") + PREFIX,
            "prefix_source": "known",
            "renamed": "res_features.{0,1,4,5,6,7} -> conv1, bn1, layer1, layer2, layer3, layer4",
            "method_hint": "medklip",
            "n_ignored": len(ignored),
            "ignored_examples": ignored[:MAX_EXAMPLES],
            "ignored_by_prefix": count_under(sd, (PREFIX,)),
            "contract": InputContract.imagenet(),
            "contract_origin": "MedKLIP code: transforms.Normalize(ImageNet mean/std), 224 px",
            "text_side": None,
            "text_side_note": "MedKLIP stores no text tower: its query embeddings come from a separate BERT",
        }
        if not arch.endswith(SUFFIX):
            info["note"] = "res_features includes layer4 (not the official [:-3] layout): the full ResNet is used"
        if isinstance(declared, str):
            info["config_res_base_model"] = declared
        if isinstance(obj, Mapping) and isinstance(obj.get("epoch"), int):
            info["epoch"] = obj["epoch"]
        return backbone, info


FORMAT = MedKLIP()  # this module's plug-in (benchmark/plugins.py)
