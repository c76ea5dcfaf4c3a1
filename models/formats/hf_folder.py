"""Hugging Face ``transformers`` model folders: ``config.json`` + ``model.safetensors`` or
``pytorch_model.bin`` (or a sharded index of either), as ``save_pretrained`` writes them.

Claimed automatically when ``--encoder`` names a directory holding a ``config.json`` (or
explicitly as ``hf:FOLDER``). Supported ``model_type`` values: ``vit`` (``ViTModel``,
``ViTForImageClassification``), ``dinov2`` (e.g. microsoft/rad-dino), ``swin``,
``clip_vision_model`` (``CLIPVisionModel``), ``clip`` (a full ``CLIPModel``: the vision side is
used, the text side reported) and ``vision-text-dual-encoder`` (a vision model with, e.g., a BERT
text tower). The vision model is built offline from the config
(:class:`~models.architectures.hf_vision.HFVisionEncoder`) and its weights are read with
``safetensors`` or ``torch.load(weights_only=True)`` and loaded strictly: every vision-backbone
tensor must be present with its shape, or the load is refused naming what is missing or
unexpected. Tensors outside the vision model (text tower, projections, ``logit_scale``,
classification heads) are ignored and counted; buffers the model recomputes
(``relative_position_index``, ``position_ids``) are skipped.

The input contract comes from ``preprocessor_config.json`` when the folder has one
(``image_mean``, ``image_std``, ``crop_size`` when it centre-crops, else ``size``; rescaling and
``do_normalize`` honoured); otherwise the benchmark's default (mean 0.5, std 0.5) at the config's
``image_size``. The load report says which. The result's sha256 is a content hash of the folder's
``config.json``, ``preprocessor_config.json`` and weight files, so it identifies the weights.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark.errors import CheckpointError, ConfigError
from models.checkpoint_io import read_checkpoint, sha256_file
from models.encoder import InputContract, merge_contract
from models.formats.base import LoadOptions, SourceResult, SpecSource
from models.state_loading import is_tensor_mapping, load_backbone_state

CONFIG = "config.json"
PREPROCESSOR = "preprocessor_config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
VISION_TYPES = ("vit", "dinov2", "swin", "clip_vision_model")
PAIR_TYPES = ("clip", "vision-text-dual-encoder")  # a vision_config and a text_config
TEXT_NAMES = {"bert": "BERT", "clip_text_model": "CLIP", "roberta": "RoBERTa", "distilbert": "DistilBERT"}
MAX_EXAMPLES = 10


def _folder(spec: str) -> Path:
    return Path(spec[len("hf:") :] if spec.startswith("hf:") else spec).expanduser()


def read_config(folder: Path):
    """(the folder's config, the vision config to build, the text config or None)."""
    from transformers import AutoConfig

    try:
        raw = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: cannot read it as JSON ({e})") from e
    raw = raw if isinstance(raw, dict) else {}
    model_type = raw.get("model_type")
    if model_type not in VISION_TYPES + PAIR_TYPES:
        raise CheckpointError(
            f"{folder / CONFIG}: model_type {model_type!r} (architectures {raw.get('architectures')}) is not a "
            f"supported image encoder; supported model types: {', '.join(VISION_TYPES + PAIR_TYPES)}. Load other "
            f"models through a `module:function` factory returning an Encoder."
        )
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds
        raise CheckpointError(
            f"{folder / CONFIG}: transformers cannot read this config ({type(e).__name__}: {e})"
        ) from e
    if model_type in VISION_TYPES:
        return config, config, None
    vision = config.vision_config
    if vision.model_type == "clip":  # a dual encoder may wrap a whole CLIP config; its vision side is used
        vision = vision.vision_config
    if vision.model_type not in VISION_TYPES:
        raise CheckpointError(
            f"{folder / CONFIG}: the vision model is of type {vision.model_type!r}; "
            f"supported: {', '.join(VISION_TYPES)}"
        )
    return config, vision, getattr(config, "text_config", None)


def weight_files(folder: Path) -> list[Path]:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    for name in INDEX_FILES:
        index = folder / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError) as e:
                raise CheckpointError(f"{index}: not a weight index (no readable weight_map: {e})") from e
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise CheckpointError(f"{index} names shards that are not in the folder: {', '.join(missing)}")
            return [folder / s for s in shards]
    present = sorted(p.name for p in folder.iterdir())
    other = [n for n in present if n.endswith((".h5", ".msgpack", ".ckpt", ".pt", ".pth"))]
    raise CheckpointError(
        f"{folder}: no PyTorch weights next to {CONFIG}: expected {' or '.join(WEIGHT_FILES)} (or a sharded "
        f"{' / '.join(INDEX_FILES)}); the folder holds {', '.join(present[:20])}."
        + (
            f" {', '.join(other)} cannot be read here: re-save the model with transformers' save_pretrained."
            if other
            else ""
        )
    )


def read_weights(files: list[Path], trust_pickle: bool) -> tuple[dict, str]:
    state: dict = {}
    how = set()
    for path in files:
        obj, read_with = read_checkpoint(path, trust_pickle=trust_pickle)
        if not is_tensor_mapping(obj):
            raise CheckpointError(f"{path}: expected a mapping of tensor names to tensors, got {type(obj).__name__}")
        state.update(obj)
        how.add(read_with)
    return state, ", ".join(sorted(how))


def folder_sha256(folder: Path, files: list[Path]) -> tuple[str, dict[str, str]]:
    """(content hash of config, preprocessor config and weight files; sha256 of each)."""
    names = [CONFIG] + ([PREPROCESSOR] if (folder / PREPROCESSOR).is_file() else [])
    names += [n for n in INDEX_FILES if (folder / n).is_file() and len(files) > 1]
    names += [p.name for p in files]
    shas = {name: sha256_file(folder / name) for name in sorted(set(names))}
    h = hashlib.sha256()
    for name, sha in shas.items():
        h.update(f"{name}\0{sha}\n".encode())
    return h.hexdigest(), shas


# -- input contract -------------------------------------------------------------------------
def _side(value: Any, what: str, where: Path) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == value[1]:
        return int(value[0])
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            if value["height"] == value["width"]:
                return int(value["height"])
        elif "shortest_edge" in value:
            return int(value["shortest_edge"])
    raise CheckpointError(
        f"{where}: {what} {value!r} is not a square size; the benchmark feeds square images. Edit {what} "
        f"to a square size (e.g. {{'height': N, 'width': N}}) if the model accepts it."
    )


def _per_channel(value: Any, channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else (float(value),)
    return values[:1] if channels == 1 and len(values) == 3 and len(set(values)) == 1 else values


def preprocessor_contract(
    folder: Path, channels: int, default_size: int
) -> tuple[InputContract, dict[str, Any]] | None:
    """The contract ``preprocessor_config.json`` states, and the fields it came from; None without one.
    ``default_size`` (the config's image_size) when it states no size."""
    path = folder / PREPROCESSOR
    if not path.is_file():
        return None
    try:
        pre = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read it as JSON ({e})") from e
    used = {
        k: pre[k]
        for k in (
            "image_processor_type",
            "image_mean",
            "image_std",
            "do_normalize",
            "do_rescale",
            "rescale_factor",
            "do_resize",
            "size",
            "do_center_crop",
            "crop_size",
        )
        if k in pre
    }
    # pixels p in [0, 255] become (p * r - mean) / std; the benchmark's grey g = p / 255 in [0, 1], so
    # with k = 255 * r that is (g - mean / k) / (std / k)
    k = 255.0 * float(pre.get("rescale_factor", 1 / 255)) if pre.get("do_rescale", True) else 255.0
    k = 1.0 if abs(k - 1.0) < 1e-9 else k
    if pre.get("do_normalize", True) and "image_mean" in pre and "image_std" in pre:
        mean = _per_channel(pre["image_mean"], channels)
        std = _per_channel(pre["image_std"], channels)
    elif pre.get("do_normalize", True):
        raise CheckpointError(f"{path}: do_normalize is set but image_mean / image_std are missing")
    else:
        mean, std = (0.0,), (1.0,)
    size = None
    if "crop_size" in pre and pre.get("do_center_crop", True):
        size = _side(pre["crop_size"], "crop_size", path)
    elif pre.get("do_resize", True):
        size = _side(pre.get("size"), "size", path)
    try:
        contract = InputContract(
            mean=tuple(m / k for m in mean),
            std=tuple(s / k for s in std),
            channels=channels,
            input_size=size or default_size,
        )
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from e
    return contract, used


# -- what lies outside the vision model -----------------------------------------------------
def _group(key: str) -> str:
    return key.split(".", 1)[0]


def text_side(config, text_config, ignored: list[str]) -> str | None:
    if text_config is None:
        n = sum(1 for k in ignored if k.startswith("text_model."))
        return f"text tower tensors ({n} under text_model.*) without a text_config" if n else None
    kind = TEXT_NAMES.get(text_config.model_type, text_config.model_type)
    layers = getattr(text_config, "num_hidden_layers", None)
    n = sum(1 for k in ignored if k.startswith("text_model."))
    heads = [k for k in ("text_projection.weight", "visual_projection.weight", "logit_scale") if k in ignored]
    return (
        f"{kind} text tower ({layers} layers) in text_config ({config.model_type}): {n} tensors under text_model.*"
        + (f", with {', '.join(heads)}" if heads else "")
        + "; not used (zero-shot is not implemented for Hugging Face folders)"
    )


def choose_prefix(state: dict, expected: set[str], candidates: list[str]) -> tuple[str, int]:
    """The candidate prefix under which most keys, stripped, are the vision model's."""
    scores = {p: sum(1 for k in state if k.startswith(p) and k[len(p) :] in expected) for p in candidates}
    best = max(candidates, key=lambda p: (scores[p], -len(p)))
    return best, scores[best]


class HFFolder(SpecSource):
    scheme = "hf"
    description = (
        "a Hugging Face model folder (config.json + model.safetensors / pytorch_model.bin; ViT, DINOv2, "
        "Swin, CLIP), or hf:FOLDER"
    )
    source = "https://github.com/huggingface/transformers"
    implicit = True

    def matches_implicit(self, spec: str) -> bool:
        folder = _folder(spec)
        return folder.is_dir() and (folder / CONFIG).is_file()

    def load(self, spec: str, opts: LoadOptions) -> SourceResult:
        from models.architectures.hf_vision import KINDS, HFVisionEncoder, split_derived_buffers

        folder = _folder(spec).resolve()
        if not (folder / CONFIG).is_file():
            raise CheckpointError(f"--encoder {spec}: no {CONFIG} in {folder}; a Hugging Face model folder needs one")
        if opts.arch is not None:
            raise ConfigError(
                f"--arch {opts.arch}: a Hugging Face model folder names its architecture in {CONFIG}; drop --arch"
            )
        config, vision, text_config = read_config(folder)
        files = weight_files(folder)
        state, read_with = read_weights(files, opts.trust_pickle)

        channels = int(getattr(vision, "num_channels", 3))
        stated = preprocessor_contract(folder, channels, int(vision.image_size))
        encoder = HFVisionEncoder(vision, contract=stated[0] if stated else None)
        if stated:
            origin = f"checkpoint config ({PREPROCESSOR})"
        else:
            origin = (
                f"format default (no {PREPROCESSOR}: the benchmark's mean 0.5 / std 0.5, input size = {CONFIG} "
                f"image_size {encoder.image_size})"
            )
        if opts.input_contract is not None:
            origin = "user (load_encoder input_contract)"
        encoder.contract = merge_contract(encoder.contract, opts.input_contract)

        expected = set(encoder.state_dict())
        candidates = ["", f"{encoder.hf.base_model_prefix}.", "vision_model."]
        prefix, score = choose_prefix(state, expected, list(dict.fromkeys(candidates)))
        files_text = ", ".join(p.name for p in files)
        if score == 0:
            raise CheckpointError(
                f"{folder}: none of the {len(state)} tensors in {files_text} has a {KINDS[vision.model_type]['class']} "
                f"name (looked for e.g. {sorted(expected)[0]!r} under the prefixes {candidates}); the file's first "
                f"keys: {', '.join(list(state)[:8])}. Is {CONFIG} the one saved with these weights?"
            )
        backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        ignored = [k for k in state if not k.startswith(prefix)]
        backbone, derived = split_derived_buffers(encoder.derived_buffer_names, backbone)
        where = f"{folder} ({files_text}, {vision.model_type}" + (f", prefix {prefix!r}" if prefix else "") + ")"
        report = load_backbone_state(encoder, backbone, where=where, allow_partial=opts.allow_partial)
        sha, shas = folder_sha256(folder, files)
        report.update(
            {
                "arch": encoder.arch,
                "model_type": config.model_type,
                "architectures": list(getattr(config, "architectures", None) or []),
                "vision_model": KINDS[vision.model_type]["class"],
                "global_feature": KINDS[vision.model_type]["global"],
                "weights": [p.name for p in files],
                "read_with": read_with,
                "prefix": prefix,
                "n_ignored": len(ignored),
                "ignored_by_group": dict(sorted(Counter(_group(k) for k in ignored).items())),
                "ignored_examples": ignored[:MAX_EXAMPLES],
                "buffers_skipped": derived,
                "contract_origin": origin,
                "preprocessor": stated[1] if stated else None,
                "text_side": text_side(config, text_config, ignored),
                "files_sha256": shas,
            }
        )
        return SourceResult(encoder, str(folder), "hf_folder", None, report, sha256=sha)


SOURCE = HFFolder()  # this module's plug-in (benchmark/plugins.py)
