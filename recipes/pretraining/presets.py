"""Named, recorded pretraining presets: each one is a method implementation (``convirt``,
``gloria``, ``mgca`` in :mod:`recipes.pretraining.methods`) plus the settings of ONE source
code base, named so that every exported checkpoint says which recipe produced it
(``medvlp.preset`` and the file name ``<preset>-<images>-<arch>.ckpt``).

``--method`` takes a preset name. Each preset's settings are the defaults of a run; any option
(``--lr``, ``--image-init``, ``--max-words`` ...) or method hyperparameter (``--hp NAME=VALUE``)
still overrides them, and the checkpoint records the resolved values. ``docs/protocol.md``
("Recipes") lists every preset against its source, with what we do not reproduce.

Text inputs (``text_input``): ``caption`` = every kept sentence of the report joined (MGCA's
``get_caption``); ``sentence`` = ONE kept sentence drawn uniformly per step (GLoRIA's and the
original ConVIRT code's ``get_caption`` / ``random.choice``), from a generator seeded by the
run seed, epoch and pair, so a run is reproducible; validation pairs draw from (seed, pair).
``sentence_stop_words`` > 0 reproduces GLoRIA's ``create_path_2_sent_mapping``, which stops
collecting a report's sentences once their running word count EQUALS ``captions_per_image``
(5 in its configs); 0 keeps every sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError
from recipes.pretraining.methods import DEFAULTS


@dataclass(frozen=True)
class Preset:
    name: str
    method: str  # the implementation in recipes.pretraining.methods
    source: str  # the code (repository, commit, files) whose settings this preset follows
    image_init: str  # default --image-init
    max_words: int  # default --max-words (BERT tokens per text input)
    upsample: int  # default --upsample (ResNet inputs resized to this before conv1; 0 = off)
    hparams: dict[str, Any] = field(default_factory=dict)  # optimisation + method settings (DEFAULTS layout)
    notes: tuple[str, ...] = ()  # what the preset does not reproduce, or reproduces on purpose

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "source": self.source,
            "text_input": self.hparams["text_input"],
        }


MGCA_SOURCE = (
    "HKU-MedAI/MGCA@680fe4a (mgca/models/convirt/convirt_module.py, mgca/models/mgca/mgca_module.py, "
    "mgca/models/backbones/encoder.py, mgca/datasets/pretrain_dataset.py)"
)
GLORIA_SOURCE = (
    "marshuang80/gloria@416466a (configs/chexpert_pretrain_config.yaml, gloria/datasets/pretraining_dataset.py, "
    "gloria/models/cnn_backbones.py)"
)
CONVIRT_ORIGINAL_SOURCE = (
    "edreisMD/ConVIRT-pytorch@c99ca5f (config.yaml, models/model.py, loss/nt_xent.py, train.py, "
    "dataloader/dataset.py, dataloader/dataset_wrapper.py)"
)

_CAPTION = {"text_input": "caption", "sentence_stop_words": 0}

PRESETS: dict[str, Preset] = {
    "convirt": Preset(
        "convirt",
        "convirt",
        MGCA_SOURCE,
        image_init="imagenet",
        max_words=112,
        upsample=299,
        hparams={**DEFAULTS["convirt"], **_CAPTION},
        notes=(
            "MGCA's re-implementation of ConVIRT, not the ConVIRT authors' code: 128-d MLP projections with batch "
            "norm, tau 0.07, loss = image->text + text->image, AdamW 2e-5, batch 72, first 6 BERT layers, [CLS] "
            "feature",
        ),
    ),
    "convirt-original": Preset(
        "convirt-original",
        "convirt",
        CONVIRT_ORIGINAL_SOURCE,
        image_init="random",
        max_words=128,
        upsample=0,
        hparams={
            **DEFAULTS["convirt"],
            "lr": 1e-4,
            "weight_decay": 1e-6,
            "betas": (0.9, 0.999),
            "optimizer": "adam",
            "batch_size": 32,
            "epochs": 1000,
            "patience": 1000,
            "scheduler": "epoch_cosine",
            "cosine_delay_epochs": 10,
            "grad_clip": 0.0,
            "text_layers": 0,
            "freeze_text_layers": 6,
            "emb_dim": 512,
            "projection": "linear_relu",
            "text_pooling": "mean",
            "temperature": 0.1,
            "i2t_weight": 0.75,
            "t2i_weight": 0.25,
            "text_projection_no_grad": False,
            "text_input": "sentence",
            "sentence_stop_words": 0,
        },
        notes=(
            "text projection under torch.no_grad() in the original (no gradient reaches BERT or the text head): not "
            "reproduced by default; --hp text_projection_no_grad=true reproduces it",
            "images: the original squashes to 224x224, RandomResizedCrop(0.8-1), horizontal flip, "
            "RandomGrayscale(0.2), ImageNet mean/std; we keep MGCA's resize-pad-crop with mean/std 0.5",
            "validation: the original holds out a random 10% of its CSV and validates every 5 epochs; we use the "
            "official validate + test split every epoch",
            "sentences: the original splits the raw report at '.' and may draw an empty or blank string; we draw "
            "from MGCA's cleaned sentence list; BERT input truncated/padded to 128 tokens instead of dynamic padding "
            "to at most 512 (the same text feature for any sentence of <= 126 word pieces)",
            "fp16 through apex O2 in the original; bf16 autocast on CUDA here",
        ),
    ),
    "gloria": Preset(
        "gloria",
        "gloria",
        GLORIA_SOURCE,
        image_init="imagenet-v1",
        max_words=97,
        upsample=299,
        hparams={**DEFAULTS["gloria"], "text_input": "sentence", "sentence_stop_words": 5},
        notes=(
            "the official configs train on CheXpert reports (one report column); on MIMIC-CXR the sentences come "
            "from IMPRESSION + FINDINGS, split as MGCA does",
            "torchvision `pretrained=True` = IMAGENET1K_V1 weights (resnet50-0676ba61.pth)",
        ),
    ),
    "gloria-caption": Preset(
        "gloria-caption",
        "gloria",
        GLORIA_SOURCE + " with MGCA's caption input",
        image_init="imagenet-v1",
        max_words=112,
        upsample=299,
        hparams={**DEFAULTS["gloria"], **_CAPTION},
        notes=(
            "the earlier recipe's text input: MGCA's whole caption, 112 tokens; `--image-init imagenet` reproduces the "
            "earlier recipe exactly (torchvision's default = V2 weights)",
        ),
    ),
    "mgca": Preset(
        "mgca",
        "mgca",
        MGCA_SOURCE,
        image_init="imagenet",
        max_words=112,
        upsample=299,
        hparams={**DEFAULTS["mgca"], **_CAPTION},
        notes=("MGCA's ResNet-50 is torchvision's ResNet50_Weights.DEFAULT (V2), as `imagenet` here",),
    ),
}

PRESET_NAMES = tuple(PRESETS)
TEXT_INPUTS = ("caption", "sentence")


def get_preset(name: str) -> Preset:
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError(
            f"--method must be one of {', '.join(PRESET_NAMES)} (named presets, see docs/protocol.md "
            f"'Recipes'), got {name!r}"
        )
    return preset
