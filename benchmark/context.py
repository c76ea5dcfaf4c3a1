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
    seg_epoch_cap: int | None = None  # debug (--seg-max-epochs): segmentation epochs cap (flagged in results)
    flags: dict = field(default_factory=dict)
    text_encoder: str | None = None  # --text-encoder: a local BERT folder for a checkpoint's zero-shot text side
    # classification: train the probes of a task's units batched (benchmark/batched_probe.py);
    # not a flag: it is no part of any unit key (results record it in their provenance)
    probe_batching: bool = True

    @property
    def encoder(self):
        return self.loaded.encoder

    def result_header(self, task, unit) -> dict:
        """The Result fields every family fills the same way: unit, suite, task identity,
        the family's protocol version (results of different versions are never compared,
        :mod:`benchmark.protocol_versions`), encoder (with its load report) and provenance."""
        from .protocol_versions import current_version
        from .provenance import harness_provenance

        return {
            "unit": unit,
            "suite": self.suite.name,
            "family": task.family,
            "protocol_version": current_version(task.family),
            "dataset": task.dataset,
            "metric": task.metric,
            "encoder": {**self.encoder_identity(), "load_report": getattr(self.loaded, "load_report", {})},
            "provenance": harness_provenance(self.device),
        }

    def unit_key(self, data, unit, **family_parts) -> str:
        """Hash of everything that determines a unit's result: the parts every family shares
        (task, suite, checkpoint sha256, architecture, manifest, the image files' content digest,
        unit, flags, limit) plus the
        family's own ``family_parts``. A rerun reuses a finished unit only if this matches."""
        import hashlib
        import json

        payload = {
            "task": data.task.fingerprint(),
            "suite": self.suite.describe(),
            "encoder": self.loaded.sha256,
            "arch": self.encoder.describe(),
            "manifest": data.manifest.sha256,
            "images": data.content_sha256,
            "unit": unit.model_dump(),
            "flags": self.flags,
            "limit": self.limit,
            **family_parts,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

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
