"""The encoder interface every benchmark task codes against.

An :class:`Encoder` is a frozen image backbone with a declared :class:`InputContract`
(how a grey chest X-ray must be turned into its input), a global feature
(:meth:`Encoder.forward_global`, used by the linear probes) and a multi-scale feature
pyramid (:meth:`Encoder.forward_pyramid`, used by the segmentation and detection heads).

Typical use::

    enc = load_encoder("mgca_resnet50.ckpt").encoder
    x = enc.prepare(grey)          # (B,1,H,W) in [0,1] -> (B,C,H,W) normalised
    g = enc.forward_global(x)      # (B, enc.feature_dim)
    feats = enc.forward_pyramid(x) # list, channels enc.pyramid_channels, strides enc.pyramid_strides
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputContract:
    """What an encoder expects as input.

    ``mean``/``std`` are applied after the grey image (in [0, 1]) has been replicated to
    ``channels`` channels: ``x = (grey - mean) / std``. The default (0.5, 0.5) maps [0, 1]
    to [-1, 1], the benchmark's CXR protocol. ``mean``/``std`` have one value per channel
    (or a single value used for all channels). ``input_size`` is the fixed square size the
    encoder needs (ViT: its ``img_size``); ``None`` means any size. Resizing is the data
    pipeline's job: :meth:`Encoder.prepare` does not resize.
    """

    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    channels: int = 3
    input_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if self.channels not in (1, 3):
            raise ConfigError(f"input contract: channels must be 1 or 3, got {self.channels}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) not in (1, self.channels):
                raise ConfigError(
                    f"input contract: {name} has {len(value)} values but channels={self.channels}; "
                    f"give one value per channel or a single value"
                )
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"input contract: std values must be positive, got {self.std}")
        if self.input_size is not None and int(self.input_size) <= 0:
            raise ConfigError(f"input contract: input_size must be positive, got {self.input_size}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "channels": self.channels,
            "input_size": self.input_size,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputContract":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(
                f"input contract: unknown field(s) {sorted(unknown)}; allowed: mean, std, channels, input_size"
            )
        kw = dict(d)
        for k in ("mean", "std"):
            if k in kw and isinstance(kw[k], (int, float)):
                kw[k] = (float(kw[k]),)
        return cls(**kw)

    @classmethod
    def imagenet(cls, input_size: int | None = None) -> "InputContract":
        return cls(mean=IMAGENET_MEAN, std=IMAGENET_STD, channels=3, input_size=input_size)


OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# name -> (mean, std, where the values come from); all three-channel, grey replicated
CONTRACT_PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...], str]] = {
    "cxr": ((0.5,) * 3, (0.5,) * 3, "the benchmark's default: [0, 1] -> [-1, 1]"),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD, "torchvision's ImageNet statistics"),
    "clip": (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, "OpenAI CLIP's preprocessing"),
    "chexzero": (
        (101.48761 / 255,) * 3,
        (83.43944 / 255,) * 3,
        "CheXzero's preprocessing: Normalize(101.48761, 83.43944) on 0-255 grey pixels",
    ),
    "none": ((0.0,) * 3, (1.0,) * 3, "no normalisation: grey in [0, 1] (BioViL's inference transform)"),
}


def parse_contract(text: str) -> InputContract:
    """``--input-contract``: a preset name (:data:`CONTRACT_PRESETS`) or a JSON object of
    :class:`InputContract` fields, e.g. ``{"mean": [0.4], "std": [0.33], "channels": 3}``."""
    import json

    text = text.strip()
    if text in CONTRACT_PRESETS:
        mean, std, _ = CONTRACT_PRESETS[text]
        return InputContract(mean=mean, std=std, channels=3)
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--input-contract: not valid JSON ({error})") from None
        if not isinstance(fields, dict):
            raise ConfigError("--input-contract: give a JSON object of mean, std, channels, input_size")
        return InputContract.from_dict(fields)
    raise ConfigError(
        f"--input-contract {text!r}: expected a preset ({', '.join(CONTRACT_PRESETS)}) or a JSON object such as "
        '\'{"mean": [0.5], "std": [0.5], "channels": 3}\''
    )


def merge_contract(base: InputContract, override: InputContract | None) -> InputContract:
    """Apply a user's contract on top of an architecture's.

    The user's mean/std/channels win. An architecture with a fixed input size keeps it
    unless the user names the same size; naming a different one is an error (the
    encoder's weights, e.g. a ViT's position embeddings, fix it).
    """
    if override is None:
        return base
    size = override.input_size
    if base.input_size is not None:
        if size is not None and size != base.input_size:
            raise ConfigError(
                f"input contract: this encoder needs {base.input_size}x{base.input_size} inputs "
                f"(fixed by its weights) but input_size={size} was requested; drop input_size "
                f"or set it to {base.input_size}"
            )
        size = base.input_size
    if override.channels != base.channels:
        raise ConfigError(
            f"input contract: this encoder's first layer takes {base.channels} channel(s) but "
            f"channels={override.channels} was requested; use channels={base.channels}"
        )
    return dataclasses.replace(override, input_size=size)


class Encoder(nn.Module):
    """Abstract base of all encoders.

    Subclasses set ``arch``, ``contract``, ``feature_dim``, ``pyramid_channels`` and
    ``pyramid_strides`` in ``__init__`` and implement :meth:`forward_global` and
    :meth:`forward_pyramid`.

    For state-dict checkpoints, the encoder's own ``state_dict()`` keys are the
    checkpoint's (prefix-stripped) key names, so loading is a plain
    ``load_state_dict``. ``head_prefixes`` name checkpoint tensors that belong to a
    classification head rather than the backbone (ignored when loading, but counted).
    """

    arch: str = "encoder"
    contract: InputContract = InputContract()
    feature_dim: int = 0
    pyramid_channels: tuple[int, ...] = ()
    pyramid_strides: tuple[int, ...] = ()
    head_prefixes: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self._frozen = False

    # -- input ----------------------------------------------------------------------------
    def prepare(self, grey: Tensor) -> Tensor:
        """Turn grey images (B,1,H,W) (or (B,H,W)) with values in [0, 1] into this encoder's
        input: replicate to ``contract.channels`` channels and normalise with the contract's
        mean/std. Does not resize (see ``contract.input_size``)."""
        if grey.dim() == 3:
            grey = grey.unsqueeze(1)
        if grey.dim() != 4 or grey.shape[1] not in (1, self.contract.channels):
            raise ConfigError(
                f"{self.arch}: prepare() expects grey images of shape (B,1,H,W) with values in "
                f"[0, 1], got shape {tuple(grey.shape)}"
            )
        if not grey.is_floating_point():
            raise ConfigError(f"{self.arch}: prepare() expects float images in [0, 1], got dtype {grey.dtype}")
        c = self.contract.channels
        x = grey.expand(-1, c, -1, -1) if grey.shape[1] != c else grey
        mean = torch.tensor(self.contract.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.contract.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous()

    # -- features -------------------------------------------------------------------------
    def forward_global(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """(B, feature_dim) global feature of a prepared batch."""
        raise NotImplementedError

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        """Feature maps with ``pyramid_channels`` channels at ``pyramid_strides``."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_global(x)

    # -- loading hooks --------------------------------------------------------------------
    def explain_shape_mismatch(
        self, key: str, checkpoint_shape: tuple[int, ...], model_shape: tuple[int, ...]
    ) -> str | None:
        """Optional extra advice when a checkpoint tensor has the wrong shape."""
        return None

    # -- freezing -------------------------------------------------------------------------
    def freeze(self) -> "Encoder":
        """Freeze the encoder: no gradients, eval mode (BatchNorm statistics, dropout), and
        ``train()`` calls from an enclosing model keep it in eval mode. ``unfreeze()`` undoes."""
        self._frozen = True
        self.requires_grad_(False)
        return super().train(False)

    def unfreeze(self) -> "Encoder":
        self._frozen = False
        self.requires_grad_(True)
        return self

    @property
    def frozen(self) -> bool:
        return self._frozen

    def train(self, mode: bool = True) -> "Encoder":
        return super().train(False if self._frozen else mode)

    # -- provenance -----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "class": type(self).__name__,
            "contract": self.contract.to_dict(),
            "feature_dim": int(self.feature_dim),
            "pyramid_channels": [int(c) for c in self.pyramid_channels],
            "pyramid_strides": [int(s) for s in self.pyramid_strides],
        }

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, feature_dim={self.feature_dim}"
