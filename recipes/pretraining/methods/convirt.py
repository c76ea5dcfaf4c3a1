"""ConVIRT, in two settings (:mod:`recipes.pretraining.presets`).

``convirt`` (MGCA's re-implementation, the default of every hyperparameter below): global image
and text features projected to 128-d by two-layer MLP heads with batch norm (MGCA's
``GlobalEmbedding``), L2-normalised, InfoNCE with temperature 0.07; loss = image->text +
text->image cross entropy (their sum, as in MGCA's code). Text feature: the [CLS] token of the
first 6 BERT layers. Heads: ``img_encoder.global_embed`` / ``text_encoder.global_embed``.

``convirt-original`` (edreisMD/ConVIRT-pytorch's settings): ``projection="linear_relu"`` =
Linear(d, d) -> ReLU -> Linear(d, 512) on each side, no batch norm (heads
``img_encoder.projection`` / ``text_encoder.projection``, so the zero-shot scorer, which knows
the MGCA layout, refuses them instead of misreading them); ``text_pooling="mean"`` = the
attention-masked mean of the last layer's token states (Sentence-BERT); all 12 BERT layers with
``freeze_text_layers=6`` (encoder layers 0-5 frozen); temperature 0.1; loss =
0.75 x image->text + 0.25 x text->image (its ``alpha_weight``). ``text_projection_no_grad=True``
reproduces the original's ``torch.no_grad()`` around the pooling and text projection (then no
gradient reaches BERT or the text head).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import ConfigError
from recipes.pretraining.encoders import GlobalEmbedding, ImageTower, load_bert
from recipes.pretraining.losses import info_nce
from recipes.pretraining.methods import Method

PROJECTIONS = ("mgca", "linear_relu")
TEXT_POOLINGS = ("cls", "mean")


def linear_relu_head(input_dim: int, output_dim: int) -> nn.Sequential:
    """The original ConVIRT code's projection: Linear(d, d) -> ReLU -> Linear(d, out)."""
    return nn.Sequential(nn.Linear(input_dim, input_dim), nn.ReLU(), nn.Linear(input_dim, output_dim))


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over the attended tokens: (B, T, D), (B, T) -> (B, D)."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp(min=1e-9)


class TextTower(nn.Module):
    def __init__(self, bert, emb_dim: int, proj_hidden: int, projection: str):
        super().__init__()
        self.model = bert
        if projection == "mgca":
            self.global_embed = GlobalEmbedding(bert.config.hidden_size, proj_hidden, emb_dim)
        else:
            self.projection = linear_relu_head(bert.config.hidden_size, emb_dim)

    def head(self) -> nn.Module:
        return self.global_embed if hasattr(self, "global_embed") else self.projection


class ConVIRT(Method):
    name = "convirt"

    def __init__(
        self,
        *,
        arch: str,
        text_encoder: str,
        image_init: str = "random",
        seed: int = 0,
        upsample: int = 299,
        local_layer: str = "layer3",
        text_layers: int = 6,
        emb_dim: int = 128,
        proj_hidden: int = 2048,
        temperature: float = 0.07,
        projection: str = "mgca",
        text_pooling: str = "cls",
        freeze_text_layers: int = 0,
        i2t_weight: float = 1.0,
        t2i_weight: float = 1.0,
        text_projection_no_grad: bool = False,
        **_,
    ):
        super().__init__()
        if projection not in PROJECTIONS:
            raise ConfigError(f"--hp projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}")
        if text_pooling not in TEXT_POOLINGS:
            raise ConfigError(f"--hp text_pooling must be one of {', '.join(TEXT_POOLINGS)}, got {text_pooling!r}")
        self.img_encoder = ImageTower(arch, image_init, seed, local_layer, upsample)
        if projection == "mgca":
            self.img_encoder.global_embed = GlobalEmbedding(self.img_encoder.feature_dim, proj_hidden, emb_dim)
        else:
            self.img_encoder.projection = linear_relu_head(self.img_encoder.feature_dim, emb_dim)
        bert = load_bert(text_encoder, num_layers=text_layers or None)
        n_frozen = min(int(freeze_text_layers), len(bert.encoder.layer))
        for layer in bert.encoder.layer[:n_frozen]:
            layer.requires_grad_(False)
        self.text_encoder = TextTower(bert, emb_dim, proj_hidden, projection)
        self.temperature = temperature
        self.emb_dim, self.proj_hidden, self.projection, self.text_pooling = (
            emb_dim,
            proj_hidden,
            projection,
            text_pooling,
        )
        self.weights = (float(i2t_weight), float(t2i_weight))
        self.frozen_text_layers = n_frozen
        self.text_projection_no_grad = bool(text_projection_no_grad)

    def image_head(self) -> nn.Module:
        return (
            self.img_encoder.global_embed if hasattr(self.img_encoder, "global_embed") else self.img_encoder.projection
        )

    def encode(self, chunk):
        glob, _, _, _ = self.img_encoder(chunk["image"])
        out = self.text_encoder.model(
            chunk["input_ids"], attention_mask=chunk["attention_mask"], token_type_ids=chunk["token_type_ids"]
        )
        ctx = torch.no_grad() if self.text_projection_no_grad else contextlib.nullcontext()
        with ctx:
            states = out.last_hidden_state
            feat = states[:, 0] if self.text_pooling == "cls" else masked_mean(states, chunk["attention_mask"])
            txt = self.text_encoder.head()(feat)
        return {"img": F.normalize(self.image_head()(glob), dim=1), "txt": F.normalize(txt, dim=1)}

    def chunk_losses(self, enc, ctx):
        i2t, t2i = info_nce(enc["img"], enc["txt"], self.temperature)
        wi, wt = self.weights
        return {"loss": wi * i2t + wt * t2i, "loss_i2t": i2t, "loss_t2i": t2i}

    def record(self):
        key = "global_embed" if self.projection == "mgca" else "projection"
        hidden = self.proj_hidden if self.projection == "mgca" else "input width"
        feature = (
            "[CLS] of the last kept BERT layer"
            if self.text_pooling == "cls"
            else "attention-masked mean of the last BERT layer"
        )
        return {
            "image_projection": {
                "key": f"img_encoder.{key}",
                "dim": self.emb_dim,
                "hidden": hidden,
                "kind": self.projection,
            },
            "text_projection": {
                "key": f"text_encoder.{key}",
                "dim": self.emb_dim,
                "hidden": hidden,
                "kind": self.projection,
            },
            "text_feature": feature,
            "temperature": self.temperature,
            "loss_weights": {"image_to_text": self.weights[0], "text_to_image": self.weights[1]},
            "frozen_text_layers": self.frozen_text_layers,
            "text_projection_no_grad": self.text_projection_no_grad,
        }
