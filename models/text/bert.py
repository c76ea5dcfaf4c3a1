"""A Hugging Face BERT text tower and its tokenizer, read from a local folder only.

Shared by the pretraining recipes (ConVIRT / GLoRIA / MGCA text towers) and the harness's
zero-shot side, which rebuilds a checkpoint's text tower."""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import ConfigError


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(
            f"tokenizer directory {path} not found (a local Hugging Face tokenizer folder, e.g. Bio_ClinicalBERT)"
        )
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


_UNUSED_BERT_PARTS = ("pooler.", "cls.")  # the pooler and the pretraining (MLM / NSP) heads


def load_bert(path: str | Path, *, num_layers: int | None = None, attentions: bool = False, log=print):
    """BERT without pooler from a local directory; ``num_layers`` keeps the first N layers
    (MGCA: 6 of Bio_ClinicalBERT's 12). Eager attention when attention maps are needed.

    Loaded quietly and checked: every tensor of the kept model must come from the folder (a
    missing one is an error, not a silently random layer), and the tensors left over must be
    those of the dropped layers, the pooler or the pretraining heads. Instead of the library's
    table of "unexpected" keys, one line says what was kept (through ``log``)."""
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"--text-encoder {path}: no config.json; expected a local Hugging Face BERT folder (e.g. Bio_ClinicalBERT)"
        )
    config = BertConfig.from_pretrained(str(path), local_files_only=True)
    total_layers = config.num_hidden_layers
    if num_layers:
        config.num_hidden_layers = min(num_layers, total_layers)
    kept = config.num_hidden_layers
    config._attn_implementation = "eager" if attentions else "sdpa"
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = BertModel.from_pretrained(
            str(path), config=config, add_pooling_layer=False, local_files_only=True, output_loading_info=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys") or [])
    mismatched = list(info.get("mismatched_keys") or [])
    if missing or mismatched:
        raise ConfigError(
            f"--text-encoder {path}: the folder's weights do not fill the BERT its config.json describes: "
            f"{len(missing)} missing tensor(s) {missing[:4]}, {len(mismatched)} of another shape {mismatched[:2]}"
        )
    dropped_layers = {f"encoder.layer.{i}." for i in range(kept, total_layers)}
    leftover = sorted(info.get("unexpected_keys") or [])
    of_dropped = [k for k in leftover if any(k.startswith(prefix) for prefix in dropped_layers)]
    unused = [k for k in leftover if k.startswith(_UNUSED_BERT_PARTS)]
    strange = sorted(set(leftover) - set(of_dropped) - set(unused))
    if strange:
        raise ConfigError(
            f"--text-encoder {path}: {len(strange)} tensor(s) in the folder belong to no part of a BERT encoder "
            f"(e.g. {strange[:4]}); is it a BERT checkpoint?"
        )
    if kept < total_layers:
        log(
            f"text tower: kept {kept} of {total_layers} BERT layers as the method specifies "
            f"({len(of_dropped)} tensors of layers {kept}-{total_layers - 1} not loaded)"
        )
    return model
