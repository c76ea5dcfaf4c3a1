"""MRM pretraining checkpoints (RL4M/MRM-pytorch ``model_mrm.py`` ``MRM``, saved by
``util/misc.py`` ``save_model`` as ``{"model": state_dict, "optimizer", "epoch", "scaler",
"args"}``; the README loads ``torch.load("MRM.pth")["model"]``): an MAE ViT-B/16 encoder in
timm's layout (``cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, norm.*``) next to the
MAE decoder (``mask_token``, ``decoder_embed.*``, ``decoder_pos_embed``, ``decoder_blocks.*``,
``decoder_norm.*``, ``decoder_pred.*``) and the masked-report decoder (``bert_encoder.*``,
``bert_mlp.*``). The encoder is loaded strictly; decoder and report tensors are left out and
counted. The same layout without ``bert_*`` is an MAE pretraining checkpoint with its decoder
(facebookresearch/mae ``models_mae.py``): method ``mae``.

Global feature: the CLS token after the encoder's final ``norm`` (the pretrained one; MRM's
fine-tuning README pools the patch tokens through a newly initialised ``fc_norm`` instead, a
fine-tuning choice). Input contract: MRM pretraining's ``transforms.Grayscale(3)`` +
``Normalize(mean=[0.4978], std=[0.2449])`` (``main_pretrain.py``; images are then resized to
224 inside the model); MAE's: ImageNet mean / std (``main_pretrain.py`` of MAE). A checkpoint
saved with ``args`` (an ``argparse.Namespace``) needs ``--trust-checkpoint`` to be read.
"""

from __future__ import annotations

from typing import Any

from models.architectures.vit import looks_like_vit
from models.encoder import IMAGENET_MEAN, IMAGENET_STD
from models.formats._vit_layouts import ignored_report, vit_contract
from models.formats.base import CheckpointFormat
from models.state_loading import find_state_dict, strip_ddp

DECODER = ("mask_token", "decoder_")
REPORT = ("bert_encoder.", "bert_mlp.")
MRM_MEAN, MRM_STD = (0.4978,), (0.2449,)


def _state(obj: Any) -> tuple[dict, str | None] | None:
    found = find_state_dict(obj)
    return (strip_ddp(found[0]), found[1]) if found is not None else None


class MRMCheckpoint(CheckpointFormat):
    name = "mrm"
    priority = 25  # before timm_vit, which would refuse the decoder tensors as unexpected
    description = "MRM / MAE pretraining checkpoint: ViT encoder + MAE decoder (+ report decoder), encoder loaded"
    source = "https://github.com/RL4M/MRM-pytorch"

    def detect(self, obj: Any) -> bool:
        found = _state(obj)
        if found is None:
            return False
        sd = found[0]
        return looks_like_vit(sd) and "mask_token" in sd and any(k.startswith("decoder_") for k in sd)

    def extract(self, obj: Any):
        sd, container = _state(obj)
        mrm = any(k.startswith(REPORT) for k in sd)
        left_out = [k for k in sd if k.startswith(DECODER + REPORT)]
        backbone = {k: v for k, v in sd.items() if not k.startswith(DECODER + REPORT)}
        if mrm:
            contract = vit_contract(backbone, MRM_MEAN * 3, MRM_STD * 3)
            origin = (
                "format default (RL4M/MRM-pytorch main_pretrain.py: Grayscale(3), Normalize(mean=[0.4978], "
                "std=[0.2449]); input size from pos_embed)"
            )
        else:
            contract = vit_contract(backbone, IMAGENET_MEAN, IMAGENET_STD)
            origin = "format default (facebookresearch/mae main_pretrain.py: ImageNet mean / std; input from pos_embed)"
        report_keys = [k for k in sd if k.startswith(REPORT)]
        info = {
            "container": container,
            "prefix": "",
            "method_hint": "mrm" if mrm else "mae",
            "global_feature": "CLS token after the encoder's norm",
            "contract": contract,
            "contract_origin": origin,
            "text_side": (
                f"MRM masked-report decoder: {len(report_keys)} tensors (bert_encoder.*, bert_mlp.*), a BERT that "
                "reconstructs masked report tokens from pooled image tokens; no joint image-text embedding"
                if mrm
                else None
            ),
            **ignored_report(
                left_out,
                {
                    "MAE decoder (mask_token, decoder_*)": DECODER,
                    "report decoder (bert_encoder.*, bert_mlp.*)": REPORT,
                },
            ),
        }
        if isinstance(obj, dict) and isinstance(obj.get("epoch"), int):
            info["epoch"] = obj["epoch"]
        return backbone, info


FORMAT = MRMCheckpoint()  # this module's plug-in (benchmark/plugins.py)
