"""MGCA (Wang et al., NeurIPS 2022), after its official code (re-implemented).

Instance alignment: global image/text features -> 128-d MLP heads -> L2 norm -> InfoNCE
(temperature 0.07, sum of both directions). Token alignment: word and patch tokens ->
128-d 1x1 heads -> L2 norm; each word attends over patches (and each patch over the non-
padding words) with temperature 0.1, and is contrasted against the other tokens' attended
outputs; words are weighted by the last BERT layer's [CLS] attention (sub-words summed,
clipped to the 10th-90th percentile, normalised), patches uniformly (ResNet) or by the last
ViT block's [CLS] attention. Prototype alignment: 500 L2-normalised prototypes, Sinkhorn-
Knopp codes (epsilon 0.05, 3 iterations; across all ranks under DDP) swapped between the
modalities, temperature 0.2; prototypes get no gradient in the first epoch. Total =
1 x instance + 1 x token + 1 x prototype. BERT = first 6 layers.

Deliberate difference: MGCA pairs each word with the attention paid to the NEXT token (its
attention row starts at token 1 but is zipped from token 0); here each word gets its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recipes.pretraining.encoders import GlobalEmbedding, ImageTower, LocalEmbedding, load_bert, merge_subwords
from recipes.pretraining.losses import clipped_weights, info_nce, mgca_token_loss, prototype_loss, sinkhorn
from recipes.pretraining.methods import Method


class TextTower(nn.Module):
    def __init__(self, bert, emb_dim: int, proj_hidden: int):
        super().__init__()
        self.model = bert
        width = bert.config.hidden_size
        self.global_embed = GlobalEmbedding(width, proj_hidden, emb_dim)
        self.local_embed = LocalEmbedding(width, proj_hidden, emb_dim)


class MGCA(Method):
    name = "mgca"

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
        local_temperature: float = 0.1,
        proto_temperature: float = 0.2,
        num_prototypes: int = 500,
        freeze_prototypes_epochs: int = 1,
        sinkhorn_iterations: int = 3,
        epsilon: float = 0.05,
        lambda_1: float = 1.0,
        lambda_2: float = 1.0,
        lambda_3: float = 1.0,
        **_,
    ):
        super().__init__()
        self.img_encoder_q = ImageTower(arch, image_init, seed, local_layer, upsample)
        self.img_encoder_q.global_embed = GlobalEmbedding(self.img_encoder_q.feature_dim, proj_hidden, emb_dim)
        self.img_encoder_q.local_embed = LocalEmbedding(self.img_encoder_q.local_dim, proj_hidden, emb_dim)
        self.text_encoder_q = TextTower(
            load_bert(text_encoder, num_layers=text_layers, attentions=True), emb_dim, proj_hidden
        )
        self.prototype_layer = nn.Linear(emb_dim, num_prototypes, bias=False)
        self.hp = dict(
            temperature=temperature,
            local_temperature=local_temperature,
            proto_temperature=proto_temperature,
            num_prototypes=num_prototypes,
            freeze_prototypes_epochs=freeze_prototypes_epochs,
            sinkhorn_iterations=sinkhorn_iterations,
            epsilon=epsilon,
            lambdas=(lambda_1, lambda_2, lambda_3),
        )
        self.emb_dim, self.proj_hidden = emb_dim, proj_hidden

    def encode(self, chunk):
        img = self.img_encoder_q
        glob, patches, _, patch_attn = img(chunk["image"], want_attention=img.is_vit)
        patch_emb = F.normalize(img.local_embed(patches), dim=-1)
        img_emb = F.normalize(img.global_embed(glob), dim=-1)

        txt = self.text_encoder_q
        out = txt.model(
            chunk["input_ids"],
            attention_mask=chunk["attention_mask"],
            token_type_ids=chunk["token_type_ids"],
            output_attentions=True,
        )
        slots = chunk["word_slots"]
        merged = merge_subwords(out.last_hidden_state, slots)  # (B, T, D); slot 0 = [CLS]
        cls_attn = merge_subwords(out.attentions[-1][:, :, 0, :].mean(1).detach(), slots)  # (B, T)
        word_emb = F.normalize(txt.local_embed(merged[:, 1:]), dim=-1)
        report_emb = F.normalize(txt.global_embed(merged[:, 0]), dim=-1)
        n = merged.shape[1] - 1
        word_pad = torch.arange(1, n + 1, device=slots.device).unsqueeze(0) >= chunk["n_slots"].unsqueeze(1)
        word_w = clipped_weights(cls_attn[:, 1:].masked_fill(word_pad, 0.0))
        if patch_attn is None:
            patch_w = torch.full(patch_emb.shape[:2], 1.0 / patch_emb.shape[1], device=patch_emb.device)
        else:
            patch_w = clipped_weights(patch_attn, nonzero_only=False)
        return {
            "img": img_emb,
            "txt": report_emb,
            "words": word_emb,
            "patches": patch_emb,
            "word_w": word_w,
            "patch_w": patch_w,
            "word_pad": word_pad,
        }

    def combine(self, encs, ctx):
        hp = self.hp
        with torch.no_grad():
            w = F.normalize(self.prototype_layer.weight.data.clone(), dim=1, p=2)
            self.prototype_layer.weight.copy_(w)
        img_scores = [self.prototype_layer(e["img"]) for e in encs]
        txt_scores = [self.prototype_layer(e["txt"]) for e in encs]
        # codes over every chunk of this process and (under DDP) every rank
        img_codes = sinkhorn(
            torch.cat(img_scores), hp["epsilon"], hp["sinkhorn_iterations"], ctx.all_reduce, ctx.world_size
        ).split([s.shape[0] for s in img_scores])
        txt_codes = sinkhorn(
            torch.cat(txt_scores), hp["epsilon"], hp["sinkhorn_iterations"], ctx.all_reduce, ctx.world_size
        ).split([s.shape[0] for s in txt_scores])
        l1, l2, l3 = hp["lambdas"]
        out = []
        for e, si, st, ci, ct in zip(encs, img_scores, txt_scores, img_codes, txt_codes):
            i2t, t2i = info_nce(e["img"], e["txt"], hp["temperature"])
            ita = i2t + t2i
            lw, lp = mgca_token_loss(
                e["words"],
                e["patches"],
                e["word_w"],
                e["patch_w"],
                e["word_pad"],
                hp["local_temperature"],
                normalise_patch_output=not self.img_encoder_q.is_vit,
            )
            local = lw + lp
            proto = prototype_loss(si.float(), st.float(), ci, ct, hp["proto_temperature"])
            out.append(
                {"loss": l1 * ita + l2 * local + l3 * proto, "loss_ita": ita, "loss_local": local, "loss_proto": proto}
            )
        return out

    def after_backward(self, epoch: int) -> None:
        if epoch < self.hp["freeze_prototypes_epochs"]:
            for p in self.prototype_layer.parameters():
                p.grad = None

    def record(self):
        return {
            "image_projection": {"key": "img_encoder_q.global_embed", "dim": self.emb_dim, "hidden": self.proj_hidden},
            "image_local_projection": {"key": "img_encoder_q.local_embed", "dim": self.emb_dim},
            "text_projection": {"key": "text_encoder_q.global_embed", "dim": self.emb_dim, "hidden": self.proj_hidden},
            "text_local_projection": {"key": "text_encoder_q.local_embed", "dim": self.emb_dim},
            "prototypes": {"key": "prototype_layer", "count": self.hp["num_prototypes"]},
            "text_feature": "[CLS] of the last kept BERT layer",
            "temperature": self.hp["temperature"],
        }
