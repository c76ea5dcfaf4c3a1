"""ConVIRT as MGCA re-implemented it: global image and text features projected to 128-d by
two-layer MLP heads (with batch norm), L2-normalised, symmetric InfoNCE with temperature
0.07; loss = image->text + text->image cross entropy (their sum, as in MGCA's code). Text
feature: the [CLS] token of the first 6 BERT layers."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from recipes.pretraining.encoders import GlobalEmbedding, ImageTower, load_bert
from recipes.pretraining.losses import info_nce
from recipes.pretraining.methods import Method


class TextTower(nn.Module):
    def __init__(self, bert, emb_dim: int, proj_hidden: int):
        super().__init__()
        self.model = bert
        self.global_embed = GlobalEmbedding(bert.config.hidden_size, proj_hidden, emb_dim)


class ConVIRT(Method):
    name = "convirt"

    def __init__(self, *, arch: str, text_encoder: str, image_init: str = "random", seed: int = 0, upsample: int = 299,
                 local_layer: str = "layer3", text_layers: int = 6, emb_dim: int = 128, proj_hidden: int = 2048,
                 temperature: float = 0.07, **_):
        super().__init__()
        self.img_encoder = ImageTower(arch, image_init, seed, local_layer, upsample)
        self.img_encoder.global_embed = GlobalEmbedding(self.img_encoder.feature_dim, proj_hidden, emb_dim)
        self.text_encoder = TextTower(load_bert(text_encoder, num_layers=text_layers), emb_dim, proj_hidden)
        self.temperature = temperature
        self.emb_dim, self.proj_hidden = emb_dim, proj_hidden

    def encode(self, chunk):
        glob, _, _, _ = self.img_encoder(chunk["image"])
        out = self.text_encoder.model(chunk["input_ids"], attention_mask=chunk["attention_mask"], token_type_ids=chunk["token_type_ids"])
        cls = out.last_hidden_state[:, 0]
        return {"img": F.normalize(self.img_encoder.global_embed(glob), dim=1),
                "txt": F.normalize(self.text_encoder.global_embed(cls), dim=1)}

    def chunk_losses(self, enc, ctx):
        i2t, t2i = info_nce(enc["img"], enc["txt"], self.temperature)
        return {"loss": i2t + t2i, "loss_i2t": i2t, "loss_t2i": t2i}

    def record(self):
        return {"image_projection": {"key": "img_encoder.global_embed", "dim": self.emb_dim, "hidden": self.proj_hidden},
                "text_projection": {"key": "text_encoder.global_embed", "dim": self.emb_dim, "hidden": self.proj_hidden},
                "text_feature": "[CLS] of the last kept BERT layer", "temperature": self.temperature}
