"""BioViL image encoder (``biovil_image_resnet50_proj_size_128.pt``, github.com/microsoft/hi-ml).

Layout, from hi-ml-multimodal (``health_multimodal/image/model/model.py``, ``encoder.py``,
``resnet.py``, ``modules.py``): ``ImageModel.encoder`` is an ``ImageEncoder`` whose ``encoder``
is a full torchvision ResNet-50 (``ResNetHIML``, ``fc`` kept), and ``ImageModel.projector`` is
an ``MLP`` of 1x1 convolutions (``projector.model.{0,1,3}``: conv 2048->128 without bias,
BatchNorm, conv 128->128). The released file is that model's plain state dict, loaded with
``load_state_dict`` (strict), so its keys are ``encoder.encoder.{conv1,bn1,layer1..4,fc}.*``
plus ``projector.model.*``. The backbone is ``encoder.encoder.*`` (``fc`` is ignored as a
head); the projector is counted as ignored. The global feature is the average-pooled layer4
output (``ImageModelOutput.img_embedding``).

BioViL-T's ``MultiImageModel`` adds ``encoder.backbone_to_vit``, ``encoder.vit_pooler.*`` and
``encoder.missing_previous_emb`` under the same ``encoder.`` prefix: its image embedding runs
the ResNet's patches through that temporal pooler, which the benchmark does not build, so such
a file is refused with an explanation instead of silently scoring the bare ResNet.

Input contract: hi-ml's inference transform (``create_chest_xray_transform_for_inference``:
Resize, CenterCrop, ``ToTensor``, ``ExpandChannels``) applies no mean/std normalisation, so the
encoder sees the grey values in [0, 1] replicated to 3 channels (mean 0, std 1). The text
tower (CXR-BERT-specialized) is a separate Hugging Face model, not part of this file.

Detection is exact: the keys under ``encoder.encoder.`` form a ResNet and every key lies under
``encoder.``, ``projector.`` or ``classifier.`` (``ImageModel``'s only children). M-FLAG's files
keep their ResNet directly under ``encoder.`` (``encoder.conv1.weight``), so the two never match
each other's layout.
"""

from __future__ import annotations

from typing import Any

from benchmark.errors import CheckpointError
from models.architectures.resnet import looks_like_resnet
from models.encoder import InputContract
from models.formats._sequential_resnet import count_under
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp, strip_prefix

PREFIX = "encoder.encoder."
IMAGE_MODEL_CHILDREN = ("encoder.", "projector.", "classifier.")
BIOVIL_T_KEYS = ("encoder.backbone_to_vit.", "encoder.vit_pooler.", "encoder.missing_previous_emb")
CONTRACT = InputContract(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channels=3)
MAX_EXAMPLES = 10


class BioViL(CheckpointFormat):
    name = "biovil"
    priority = 5  # before lightning_prefixed, which would discover "encoder.encoder." as an unknown prefix
    description = "BioViL image model (encoder.encoder.* ResNet-50 + projector.*, hi-ml-multimodal)"
    source = "https://github.com/microsoft/hi-ml/tree/main/hi-ml-multimodal"

    def detect(self, obj: Any) -> bool:
        found = find_state_dict(obj)
        if found is None:
            return False
        sd = strip_ddp(found[0])
        return looks_like_resnet(strip_prefix(sd, PREFIX)) and all(k.startswith(IMAGE_MODEL_CHILDREN) for k in sd)

    def extract(self, obj: Any):
        sd, container = find_state_dict(obj)
        sd = strip_ddp(sd)
        temporal = sorted({p for p in BIOVIL_T_KEYS for k in sd if k.startswith(p)})
        if temporal:
            raise CheckpointError(
                f"this is a BioViL-T image model (MultiImageModel: {', '.join(t.rstrip('.') + '*' for t in temporal)} "
                f"beside its ResNet-50 under {PREFIX}*). Its image embedding passes the ResNet's patches through a "
                "temporal ViT pooler that this benchmark does not build, so scoring the bare ResNet would not measure "
                "BioViL-T. To score that ResNet-50 trunk on its own anyway, save "
                f"{{k[len('{PREFIX}'):]: v for k, v in state.items() if k.startswith('{PREFIX}')}} and pass that file "
                "(it loads as a torchvision ResNet-50)"
            )
        backbone = strip_prefix(sd, PREFIX)
        ignored = [k for k in sd if not k.startswith(PREFIX)]
        projector = [k for k in sd if k.startswith("projector.")]
        info: dict[str, Any] = {
            "container": container,
            "prefix": PREFIX,
            "prefix_source": "known",
            "method_hint": "biovil",
            "n_ignored": len(ignored),
            "ignored_examples": ignored[:MAX_EXAMPLES],
            "ignored_by_prefix": count_under(sd, (PREFIX,)),
            "contract": CONTRACT,
            "contract_origin": "hi-ml-multimodal inference transform: Resize, CenterCrop, ToTensor, ExpandChannels "
            "(no mean/std normalisation)",
            "text_side": None,
            "text_side_note": "BioViL's text tower (CXR-BERT-specialized) is a separate Hugging Face model",
        }
        if projector and "projector.model.3.weight" in sd:
            info["projector"] = (
                f"{len(projector)} tensors, joint space {int(sd['projector.model.3.weight'].shape[0])}-d"
            )
        return backbone, info


FORMAT = BioViL()  # this module's plug-in (benchmark/plugins.py)
