"""GLoRIA (Huang et al., ICCV 2021), after its official code (re-implemented).

Image: global feature -> Linear to the text width (768); local features (ResNet layer3 on
the 299-upsampled input; ViT patch tokens) -> 1x1 conv without bias. Text: the last four
BERT hidden states, sub-words merged into words (summed) in each layer, then summed over
layers; word embeddings = merged tokens, sentence embedding = their mean over all positions
(zero padding included). Loss = global (cosine x 10, both directions) + local word-region
(attention sharpness 4, word aggregation 5, scale 10, both directions), weights 1 and 1.
Checkpoint keys: ``gloria.img_encoder.model.*``, ``gloria.text_encoder.model.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from recipes.pretraining.encoders import ImageTower, load_bert, merge_subwords
from recipes.pretraining.losses import gloria_global_loss, gloria_local_loss
from recipes.pretraining.methods import Method


class TextTower(nn.Module):
    def __init__(self, bert, last_n_layers: int):
        super().__init__()
        self.model = bert
        self.last_n_layers = last_n_layers

    def forward(self, chunk):
        out = self.model(
            chunk["input_ids"],
            attention_mask=chunk["attention_mask"],
            token_type_ids=chunk["token_type_ids"],
            output_hidden_states=True,
        )
        layers = torch.stack(out.hidden_states[-self.last_n_layers :]).sum(0)  # (B, T, D)
        words = merge_subwords(layers, chunk["word_slots"])
        return words, words.mean(dim=1)


class Core(nn.Module):
    def __init__(self, image: ImageTower, text: TextTower, dim: int):
        super().__init__()
        self.img_encoder = image
        image.global_embedder = nn.Linear(image.feature_dim, dim)
        image.local_embedder = nn.Conv2d(image.local_dim, dim, kernel_size=1, bias=False)
        self.text_encoder = text


class GLoRIA(Method):
    name = "gloria"

    def __init__(
        self,
        *,
        arch: str,
        text_encoder: str,
        image_init: str = "random",
        seed: int = 0,
        upsample: int = 299,
        local_layer: str = "layer3",
        text_layers: int = 0,
        last_n_layers: int = 4,
        temp1: float = 4.0,
        temp2: float = 5.0,
        temp3: float = 10.0,
        local_weight: float = 1.0,
        global_weight: float = 1.0,
        **_,
    ):
        super().__init__()
        bert = load_bert(text_encoder, num_layers=text_layers or None)
        image = ImageTower(arch, image_init, seed, local_layer, upsample)
        self.dim = bert.config.hidden_size
        self.gloria = Core(image, TextTower(bert, last_n_layers), self.dim)
        self.temps = (temp1, temp2, temp3)
        self.weights = (local_weight, global_weight)
        self.last_n_layers = last_n_layers

    def encode(self, chunk):
        img = self.gloria.img_encoder
        glob, local, (h, w), _ = img(chunk["image"])
        regions = img.local_embedder(local.transpose(1, 2).reshape(local.shape[0], -1, h, w)).flatten(2)  # (B, D, R)
        words, sent = self.gloria.text_encoder(chunk)
        host = chunk.get("host_n_words")  # the lengths known on the host (collate): no device read
        return {
            "img_g": img.global_embedder(glob),
            "img_l": regions,
            "txt_g": sent,
            "txt_l": words.transpose(1, 2),
            "cap_lens": chunk["n_words"] + 1,
            "max_cap_len": max(host) + 1 if host else None,
        }

    def chunk_losses(self, enc, ctx):
        t1, t2, t3 = self.temps
        l0, l1 = gloria_local_loss(enc["txt_l"], enc["img_l"], enc["cap_lens"], t1, t2, t3, max_len=enc["max_cap_len"])
        g0, g1 = gloria_global_loss(enc["img_g"], enc["txt_g"], t3)
        lw, gw = self.weights
        return {"loss": (l0 + l1) * lw + (g0 + g1) * gw, "loss_local": l0 + l1, "loss_global": g0 + g1}

    def record(self):
        return {
            "image_projection": {"key": "gloria.img_encoder.global_embedder", "dim": self.dim},
            "image_local_projection": {"key": "gloria.img_encoder.local_embedder", "dim": self.dim},
            "text_projection": None,
            "text_feature": f"sum of the last {self.last_n_layers} BERT layers, words merged, mean over positions",
            "temperatures": dict(zip(("temp1", "temp2", "temp3"), self.temps)),
        }
