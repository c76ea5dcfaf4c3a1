"""A TINY random BERT and a WordPiece tokenizer trained on MIMIC-CXR report text, written to a
directory that ``python -m recipes.pretraining --text-encoder DIR`` reads like a local
Bio_ClinicalBERT folder. For tests, smoke runs and the demo leaderboard
(``scripts/build_demo_leaderboard.py``); nothing is downloaded.

The tokenizer is learnt from the IMPRESSION + FINDINGS text of every pair under the data root
(``recipes.mimic.load_pairs``), the model is a randomly initialised ``BertModel`` (no pooler)
seeded with ``seed``: the same data root and arguments give the same files.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_bert(
    data_root: str | Path,
    directory: str | Path,
    *,
    vocab_size: int = 120,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    intermediate_size: int = 64,
    max_positions: int = 64,
    seed: int = 0,
) -> Path:
    """Train a lower-case WordPiece tokenizer on the reports under ``data_root`` and save it with a
    random ``layers``-layer, ``hidden_size``-wide BERT into ``directory``; return ``directory``.

    ``max_positions`` must be at least the pretraining ``--max-words``."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizer

    from benchmark.progress import library_bars_off
    from recipes.mimic import load_pairs

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frame = load_pairs(data_root, min_tokens=0)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(
        (frame.impression + " " + frame.findings).tolist(), vocab_size=vocab_size, min_frequency=1, show_progress=False
    )
    wordpiece.save_model(str(directory))
    tokenizer = BertTokenizer(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(directory))
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_positions,
        )
        with library_bars_off():  # no "Writing model shards" bar in the caller's output
            BertModel(config, add_pooling_layer=False).save_pretrained(str(directory))
    finally:
        torch.random.set_rng_state(state)
    return directory
