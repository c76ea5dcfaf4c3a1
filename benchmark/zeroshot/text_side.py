"""The text side of a vision-language checkpoint, and the image embeddings that go with it.

Supported layouts (detected from the state-dict keys; the image backbone itself is loaded
by the harness's encoder loader as for every other task):

==========  ==============================  =========================================  ===========================
method      text tower (BERT) keys          image projections                          text projections
==========  ==============================  =========================================  ===========================
mgca        ``text_encoder_q.model.*``      ``img_encoder_q.global_embed`` (MLP),      ``text_encoder_q.global_embed``,
                                            ``img_encoder_q.local_embed`` (1x1 MLP)    ``text_encoder_q.local_embed``
gloria      ``gloria.text_encoder.model.*`` ``gloria.img_encoder.global_embedder``     none (the BERT width is the
                                            (Linear), ``...local_embedder`` (1x1 conv) joint space)
convirt     ``text_encoder.model.*``        ``img_encoder.global_embed`` (MLP)         ``text_encoder.global_embed``
==========  ==============================  =========================================  ===========================

These are the key names of the official MGCA release (and of MGCA's ConVIRT
re-implementation), of GLoRIA's release, and of ``recipes/pretraining`` exports, which
reproduce them. Our exports also carry a ``medvlp`` record (BERT config, tokenizer folder,
local layer, input size); for an official release pass the tokenizer / BERT folder it was
trained with (Bio_ClinicalBERT) as ``--text-encoder DIR``: its ``config.json`` gives the BERT
shape (the layer count is read from the checkpoint: MGCA keeps 6 layers), the checkpoint
gives every text weight. Official releases are assumed to use ResNet ``layer3`` as local
features and a 299x299 ResNet input (both official codes do).

Text features (as in training): MGCA / ConVIRT = the [CLS] token of the last kept layer
through the text projection; GLoRIA = the sum of the last 4 hidden layers, sub-words merged
into words, averaged (the sentence embedding). Grounding prompt embedding: MGCA = the mean of
the L2-normalised word embeddings through ``text_encoder_q.local_embed`` (the space of
``img_encoder_q.local_embed``); GLoRIA = the sentence embedding (the space of
``local_embedder``); ConVIRT (no local heads) = the global text embedding, compared with the
GLOBAL image projection applied at every location of the last feature map.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import BenchmarkError

TEXT_PREFIX = {
    "mgca": "text_encoder_q.model.",
    "gloria": "gloria.text_encoder.model.",
    "convirt": "text_encoder.model.",
}
DETECT_ORDER = ("gloria", "mgca", "convirt")  # "text_encoder.model." is a suffix of the others' prefixes
HEAD_KEYS = {
    "mgca": {
        "image": "img_encoder_q.global_embed",
        "image_local": "img_encoder_q.local_embed",
        "text": "text_encoder_q.global_embed",
        "text_local": "text_encoder_q.local_embed",
    },
    "gloria": {"image": "gloria.img_encoder.global_embedder", "image_local": "gloria.img_encoder.local_embedder"},
    "convirt": {"image": "img_encoder.global_embed", "text": "text_encoder.global_embed"},
}
OFFICIAL_DEFAULTS = {"local_layer": "layer3", "resnet_input": 299, "max_words": 112, "last_n_layers": 4}


class NotApplicable(BenchmarkError):
    """The encoder has no text side: zero-shot tasks do not apply (reported, not an error)."""


# ------------------------------------------------------------------------------ reading
_STATES: dict[str, tuple[dict, dict | None]] = {}


def read_checkpoint(path: str) -> tuple[dict, dict | None]:
    """(state dict, ``medvlp`` record or None) of a checkpoint file (weights only, memory-mapped)."""
    if path not in _STATES:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file has no usable text side
            raise NotApplicable(
                f"{path}: cannot be read as a weights-only checkpoint ({type(error).__name__}); "
                "zero-shot needs a Lightning-style checkpoint with text weights"
            ) from None
        if not isinstance(obj, dict):
            raise NotApplicable(f"{path}: not a state-dict checkpoint (e.g. TorchScript): no text side to read")
        state = obj.get("state_dict", obj)
        record = obj.get("medvlp") if isinstance(obj.get("medvlp"), dict) else None
        _STATES.clear()  # one checkpoint at a time
        _STATES[path] = ({k: v for k, v in state.items() if isinstance(v, Tensor)}, record)
    return _STATES[path]


def detect_method(state: dict, record: dict | None) -> str | None:
    if record and record.get("method") in TEXT_PREFIX:
        return record["method"]
    for method in DETECT_ORDER:
        if any(k.startswith(TEXT_PREFIX[method]) for k in state):
            if method == "convirt" and any(k.startswith(("text_encoder_q.", "gloria.")) for k in state):
                continue
            return method
    return None


def applicability(loaded) -> str | None:
    """None when ``loaded`` (a LoadedEncoder) has a text side; else why zero-shot does not apply."""
    spec = str(getattr(loaded, "spec", ""))
    text_side = (getattr(loaded, "load_report", None) or {}).get("text_side")
    supported = ", ".join(p + "*" for p in TEXT_PREFIX.values())
    if text_side:  # the format found a text tower the zero-shot side cannot use (CLIP, BiomedCLIP, MedCLIP ...)
        unusable = (
            f"encoder {spec!r} ({getattr(loaded, 'format', '?')}) has a text side ({text_side}), but the harness's "
            f"zero-shot tasks read only the MGCA / GLoRIA / ConVIRT text towers ({supported} keys)"
        )
    else:
        unusable = None
    if not Path(spec).is_file():
        return unusable or f"encoder {spec!r} ({getattr(loaded, 'format', '?')}) is image-only: it has no text encoder"
    try:
        state, record = read_checkpoint(spec)
    except NotApplicable as error:
        return str(error)
    if detect_method(state, record) is None:
        return unusable or f"{Path(spec).name} has no text encoder (no {supported} keys): an image-only checkpoint"
    return None


def _sub(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _file_sha(folder: Path, names=("vocab.txt", "tokenizer.json")) -> str | None:
    for name in names:
        if (folder / name).is_file():
            return hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return None


# ------------------------------------------------------------------------------ heads
def _mlp(sd: dict, conv: bool) -> nn.Module:
    """MGCA's Global/LocalEmbedding from its weights: head.{0,1,3,4} (Linear/Conv1d, BN, ReLU, Linear/Conv1d, BN)."""
    from models.text import GlobalEmbedding, LocalEmbedding

    w0, w3 = sd["head.0.weight"], sd["head.3.weight"]
    module = (LocalEmbedding if conv else GlobalEmbedding)(w0.shape[1], w0.shape[0], w3.shape[0])
    module.load_state_dict(sd)
    return module.eval()


def _build_heads(method: str, state: dict) -> nn.ModuleDict:
    heads = nn.ModuleDict()
    for role, key in HEAD_KEYS[method].items():
        sd = _sub(state, key + ".")
        if not sd:
            raise BenchmarkError(
                f"zero-shot: the {method} checkpoint lacks its {role.replace('_', ' ')} projection ({key}.*)"
            )
        if method == "gloria":
            w = sd["weight"]
            if role == "image":
                m = nn.Linear(w.shape[1], w.shape[0])
            else:
                m = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=1, bias="bias" in sd)
            m.load_state_dict(sd)
            heads[role] = m.eval()
        else:
            heads[role] = _mlp(sd, conv=role.endswith("local"))
    return heads


# ------------------------------------------------------------------------------ the model
@dataclass
class VisionLanguage:
    method: str
    tokenizer: object
    bert: nn.Module
    heads: nn.ModuleDict
    local_layer: str
    resnet_input: int  # ResNet inputs are resized to this square before conv1 (0: not resized)
    max_words: int
    last_n_layers: int
    source: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return dict(self.source)

    def to(self, device) -> "VisionLanguage":
        self.bert.to(device).eval()
        self.heads.to(device).eval()
        return self

    # ---- text
    @torch.inference_mode()
    def text_embeddings(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """L2-normalised (global (N, D), grounding-space (N, D_l)) embeddings of ``prompts``."""
        from models.text import Captioner, merge_subwords

        device = next(self.bert.parameters()).device
        cap = Captioner(self.tokenizer, self.max_words)
        items = [cap(p) for p in prompts]
        batch = {
            k: torch.stack([it[k] for it in items]).to(device)
            for k in ("input_ids", "attention_mask", "token_type_ids", "word_slots")
        }
        n_slots = torch.tensor([it["n_slots"] for it in items], device=device)
        out = self.bert(
            batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            output_hidden_states=True,
        )
        if self.method == "gloria":
            layers = torch.stack(out.hidden_states[-self.last_n_layers :]).sum(0)
            words = merge_subwords(layers, batch["word_slots"])
            sent = F.normalize(
                words.sum(1) / n_slots.unsqueeze(1), dim=-1
            )  # mean over the used slots (cosine: scale-free)
            return sent, sent
        merged = merge_subwords(out.last_hidden_state, batch["word_slots"])
        glob = F.normalize(self.heads["text"](merged[:, 0]), dim=-1)
        if "text_local" not in self.heads:
            return glob, glob
        words = F.normalize(self.heads["text_local"](merged[:, 1:]), dim=-1)  # word j <-> slot j + 1
        slot = torch.arange(1, merged.shape[1], device=device).unsqueeze(0)
        valid = (slot < (n_slots - 1).unsqueeze(1)).float()  # drop [SEP] and padding
        local = (words * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp_min(1)
        return glob, F.normalize(local, dim=-1)

    def prompt_embedding(self, prompts: list[str], local: bool = False) -> Tensor:
        """One (D,) embedding for a list of prompts: mean of the normalised embeddings, renormalised."""
        glob, loc = self.text_embeddings(prompts)
        return F.normalize((loc if local else glob).mean(0), dim=-1)

    # ---- image
    @torch.inference_mode()
    def image_embeddings(self, encoder, x: Tensor, want_local: bool = False) -> tuple[Tensor, Tensor | None]:
        """``x``: the encoder's prepared input (B, C, H, W). Returns the L2-normalised global
        embedding (B, D) and, if asked, the L2-normalised local map (B, D_l, h, w)."""
        from models.architectures.resnet import ResNetEncoder
        from models.architectures.vit import ViTEncoder

        if isinstance(encoder, ViTEncoder):
            size = encoder.config.img_size
            if tuple(x.shape[-2:]) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            tokens = encoder.norm(encoder.blocks(encoder._embed(x)))
            g = size // encoder.config.patch_size
            glob_feat, local_tokens, last_tokens = tokens[:, 0], tokens[:, 1:], tokens[:, 1:]
        elif isinstance(encoder, ResNetEncoder):
            if self.resnet_input and tuple(x.shape[-2:]) != (self.resnet_input,) * 2:
                x = F.interpolate(x, size=(self.resnet_input, self.resnet_input), mode="bilinear", align_corners=True)
            stages = encoder.forward_pyramid(x)
            glob_feat = torch.flatten(encoder.avgpool(stages[-1]), 1)
            local_map = stages[{"layer3": 3, "layer4": 4}[self.local_layer]]
            g = None
        else:
            raise NotApplicable(f"zero-shot supports ResNet and ViT image towers, not {type(encoder).__name__}")
        glob = F.normalize(self.heads["image"](glob_feat.float()), dim=-1)
        if not want_local:
            return glob, None
        if g is None:  # ResNet
            B, C, h, w = local_map.shape
            local_tokens = local_map.flatten(2).transpose(1, 2)
            last = stages[-1]
            last_tokens, (lh, lw) = last.flatten(2).transpose(1, 2), last.shape[-2:]
        else:
            h = w = lh = lw = g
            B = x.shape[0]
        if self.method == "mgca":
            emb, (hh, ww) = self.heads["image_local"](local_tokens.float()), (h, w)
        elif self.method == "gloria":
            grid = local_tokens.transpose(1, 2).reshape(B, -1, h, w).float()
            emb, (hh, ww) = self.heads["image_local"](grid).flatten(2).transpose(1, 2), (h, w)
        else:  # no local projection: the global projection at every location of the last map
            emb = self.heads["image"](last_tokens.reshape(-1, last_tokens.shape[-1]).float()).view(B, lh * lw, -1)
            hh, ww = lh, lw
        emb = F.normalize(emb, dim=-1)
        return glob, emb.transpose(1, 2).reshape(B, -1, hh, ww)


# ------------------------------------------------------------------------------ loading
_MODELS: dict[tuple, VisionLanguage] = {}


def _bert_config(method: str, state: dict, record: dict | None, text_dir: Path | None):
    from transformers import BertConfig

    if text_dir is not None and (text_dir / "config.json").is_file():
        config = BertConfig.from_pretrained(str(text_dir), local_files_only=True)
        origin = "text_encoder_dir"
    elif record and record.get("text_encoder_config"):
        cfg = {k: v for k, v in record["text_encoder_config"].items() if not k.startswith("_")}
        config = BertConfig.from_dict(cfg)
        origin = "checkpoint record"
    else:
        raise BenchmarkError(
            f"zero-shot: this {method} checkpoint carries a text encoder but not its BERT configuration and tokenizer "
            "(an official release): pass the folder it was trained with, e.g. --text-encoder /models/Bio_ClinicalBERT "
            "(a local Hugging Face folder with config.json and vocab), or leave the zero-shot tasks out with --tasks"
        )
    bert_sd = _sub(state, TEXT_PREFIX[method])
    layers = {int(k.split(".")[2]) for k in bert_sd if k.startswith("encoder.layer.")}
    if layers:
        config.num_hidden_layers = max(layers) + 1  # MGCA keeps the first 6 layers of Bio_ClinicalBERT
    if "embeddings.word_embeddings.weight" in bert_sd:
        config.vocab_size = bert_sd["embeddings.word_embeddings.weight"].shape[0]
    config._attn_implementation = "eager"
    return config, bert_sd, origin


def _tokenizer_dir(record: dict | None, text_dir: Path | None) -> Path:
    candidates = [text_dir] if text_dir else []
    if record:
        candidates += [Path(record[k]) for k in ("tokenizer_dir", "text_encoder_dir") if record.get(k)]
    for folder in candidates:
        if folder.is_dir() and (_file_sha(folder) or (folder / "tokenizer_config.json").is_file()):
            return folder
    tried = ", ".join(str(c) for c in candidates) or "none recorded"
    raise BenchmarkError(
        f"zero-shot: no tokenizer folder found (tried: {tried}); pass --text-encoder DIR "
        "(the local Hugging Face tokenizer/BERT folder the checkpoint was trained with)"
    )


def load_vision_language(loaded, text_encoder_dir: str | None = None, device=None) -> VisionLanguage:
    """The text side and projection heads of ``loaded``'s checkpoint (cached per process).
    Raises :class:`NotApplicable` for image-only encoders."""
    reason = applicability(loaded)
    if reason:
        raise NotApplicable(f"zero-shot not applicable: {reason}")
    spec = str(loaded.spec)
    key = (spec, getattr(loaded, "sha256", None), text_encoder_dir)
    if key not in _MODELS:
        from transformers import BertModel

        from models.text import load_tokenizer

        state, record = read_checkpoint(spec)
        method = detect_method(state, record)
        text_dir = Path(text_encoder_dir) if text_encoder_dir else None
        config, bert_sd, origin = _bert_config(method, state, record, text_dir)
        bert = BertModel(config, add_pooling_layer=False)
        bert_sd = {k: v for k, v in bert_sd.items() if not k.startswith("pooler.")}
        missing, unexpected = bert.load_state_dict(bert_sd, strict=False)
        missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:
            raise BenchmarkError(
                f"zero-shot: the checkpoint's text encoder does not fit the BERT configuration ({origin}): "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        tok_dir = _tokenizer_dir(record, text_dir)
        conf = (record or {}).get("config") or {}
        hparams = conf.get("hparams") or {}
        image_input = (record or {}).get("image_input") or {}
        vl = VisionLanguage(
            method=method,
            tokenizer=load_tokenizer(tok_dir),
            bert=bert.eval(),
            heads=_build_heads(method, state),
            local_layer=conf.get("local_layer", OFFICIAL_DEFAULTS["local_layer"]),
            resnet_input=int(image_input.get("resnet_upsample", OFFICIAL_DEFAULTS["resnet_input"]) or 0),
            # padded length does not change the masked outputs; capped by the position table
            max_words=min(
                int((record or {}).get("max_words") or OFFICIAL_DEFAULTS["max_words"]), config.max_position_embeddings
            ),
            last_n_layers=int(hparams.get("last_n_layers", OFFICIAL_DEFAULTS["last_n_layers"])),
        )
        vl.source = {
            "method": method,
            "layout": "medvlp-bench pretraining export" if record else f"official {method} release",
            "text_prefix": TEXT_PREFIX[method],
            "heads": {role: k for role, k in HEAD_KEYS[method].items()},
            "bert_config_from": origin,
            "bert_layers": config.num_hidden_layers,
            "bert_config_sha256": hashlib.sha256(
                json.dumps(config.to_dict(), sort_keys=True, default=str).encode()
            ).hexdigest()[:16],
            "tokenizer_sha256": _file_sha(tok_dir),
            "tokenizer_dir": str(tok_dir),
            "local_layer": vl.local_layer,
            "resnet_input": vl.resnet_input,
            "max_words": vl.max_words,
        }
        _MODELS.clear()
        _MODELS[key] = vl
    vl = _MODELS[key]
    return vl.to(device) if device is not None else vl
