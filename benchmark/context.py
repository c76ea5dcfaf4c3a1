"""Everything a unit of work needs besides its task: encoder, device, cache and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .features import FeatureCache
from .suites import Suite


@dataclass
class RunContext:
    loaded: object  # models.loading.LoadedEncoder
    device: torch.device
    suite: Suite
    output: Path
    cache_dir: Path
    feature_cache: FeatureCache | None  # None = exact mode (--no-feature-cache)
    encode_batch_size: int = 64
    workers: int = 0
    progress: bool = True
    limit: int | None = None  # debug: at most this many images per split (results flagged)
    flags: dict = field(default_factory=dict)

    @property
    def encoder(self):
        return self.loaded.encoder

    def encoder_identity(self) -> dict:
        """What identifies the encoder's features (goes into cache keys and results)."""
        loaded = self.loaded
        return {
            "spec": loaded.spec,
            "format": loaded.format,
            "sha256": loaded.sha256,
            "method_hint": getattr(loaded, "method_hint", None),
            **self.encoder.describe(),
        }
