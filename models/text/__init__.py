"""The text side of vision-language encoders: BERT towers, tokenisation with word slots,
projection heads.

Both the harness (zero-shot: :mod:`benchmark.zeroshot.text_side`) and the pretraining recipes
import it from here; the recipes depend on the harness and ``models``, never the reverse.
"""

from models.text.bert import load_bert, load_tokenizer
from models.text.heads import GlobalEmbedding, LocalEmbedding
from models.text.words import Captioner, merge_subwords, word_groups

__all__ = [
    "Captioner",
    "GlobalEmbedding",
    "LocalEmbedding",
    "load_bert",
    "load_tokenizer",
    "merge_subwords",
    "word_groups",
]
