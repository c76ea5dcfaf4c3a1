"""Captions to fixed-length token ids with word slots, and sub-word features merged into words.

GLoRIA and MGCA work on words, not WordPiece tokens: a word's feature is the sum of its
sub-words' features (their ``aggregate_tokens``)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor


def word_groups(tokens: Sequence[str]) -> tuple[list[int], list[str]]:
    """Merge WordPiece sub-words into words, as GLoRIA/MGCA's ``aggregate_tokens`` do:
    slot of each token ([CLS] own slot, ``##x`` joins the previous word, [SEP] own slot and
    the end; tokens after [SEP] get slot ``len(tokens)``, i.e. dropped) and the words."""
    n = len(tokens)
    slots, words = [], []
    ended = False
    for tok in tokens:
        if ended:
            slots.append(n)
            continue
        if tok.startswith("##") and words:
            words[-1] += tok[2:]
        else:
            words.append(tok)
        slots.append(len(words) - 1)
        if tok == "[SEP]":
            ended = True
    return slots, words


class Captioner:
    """Tokenises captions to fixed length with word-merge slots."""

    def __init__(self, tokenizer, max_words: int = 112):
        self.tokenizer = tokenizer
        self.max_words = max_words

    def __call__(self, caption: str) -> dict[str, Any]:
        enc = self.tokenizer(caption, truncation=True, padding="max_length", max_length=self.max_words)
        tokens = self.tokenizer.convert_ids_to_tokens(enc["input_ids"])
        slots, words = word_groups(tokens)
        return {
            "input_ids": torch.tensor(enc["input_ids"]),
            "attention_mask": torch.tensor(enc["attention_mask"]),
            "token_type_ids": torch.tensor(enc.get("token_type_ids", [0] * len(tokens))),
            "word_slots": torch.tensor(slots),
            "n_slots": len(words),  # [CLS] + words + [SEP]
            "n_words": sum(1 for w in words if not w.startswith("[")),
        }


def merge_subwords(features: Tensor, slots: Tensor) -> Tensor:
    """Sum token features into word slots: (B, T, D) x (B, T) -> (B, T, D); slot T drops a
    token (after [SEP]); unused slots are zero."""
    B, T = slots.shape
    shape = features.shape[2:]
    out = features.new_zeros((B, T + 1, *shape))
    idx = slots.view(B, T, *([1] * len(shape))).expand(B, T, *shape)
    return out.scatter_add(1, idx, features)[:, :T]
