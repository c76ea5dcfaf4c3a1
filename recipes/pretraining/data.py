"""(image, caption) pairs for pretraining, MGCA's preprocessing, and the image-source switch.

Pairs and captions: :mod:`recipes.mimic.pair_set` (one pair set per data root and filters,
shared with the synthesis recipe; frontal views, MGCA captions of at least 3 tokens, train =
the official ``train`` split, validation = ``validate`` + ``test``). Captions are tokenised by
the BERT tokenizer to at most ``max_words`` (112) tokens, padded.

Image source: ``real`` (the MIMIC-CXR-JPG images), ``synthetic`` (a synthetic image root in
the MIMIC-CXR-JPG layout: ``<root>/mimic-cxr-jpg/2.0.0/files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg``;
a study folder holding one image for the whole report is used for each of the study's
images) or ``mixed`` (each pair independently synthetic with probability ``ratio``, decided by a
hash of the dicom_id, so the choice is deterministic and independent of the run). The
captions always come from the real reports under the data root. The image source never
changes the pairs: a synthetic root that lacks an image for a pair the run draws as synthetic
is refused (no pair is silently left out).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from benchmark.errors import ConfigError, DatasetNotFoundError
from benchmark.preprocess import centre_crop, random_crop
from models.text import Captioner, word_groups  # noqa: F401  (the shared text side, models/text)
from recipes.mimic.pair_set import (
    caption_sentences,
    make_caption,  # noqa: F401
    pair_set,
)
from recipes.pretraining.image_cache import CachedImages, decode_resized

IMAGE_SOURCES = ("real", "synthetic", "mixed")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


# ------------------------------------------------------------------------------ image source
def synthetic_files_dir(root: str | Path) -> Path:
    """The ``files/`` folder of a synthetic image set (root of the layout, or its
    ``mimic-cxr-jpg/2.0.0`` folder)."""
    root = Path(root)
    for cand in (root / "mimic-cxr-jpg" / "2.0.0" / "files", root / "files"):
        if cand.is_dir():
            return cand
    raise DatasetNotFoundError(
        f"--synthetic-root {root}: no synthetic image set found. Expected the MIMIC-CXR-JPG layout "
        f"{root}/mimic-cxr-jpg/2.0.0/files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg (as written by the "
        "synthesis recipe)."
    )


SYNTHESIS_SETTINGS = (
    "generator",
    "generator_fingerprint",
    "preset",
    "scheduler",
    "steps",
    "guidance",
    "seed",
    "seed_mode",
    "height",
    "width",
    "dtype",
    "images",
    "complete",
)


def synthesis_settings(root: str | Path | None) -> dict | None:
    """The generation settings a synthetic root records in its ``SYNTHESIS.json`` (written by
    ``recipes.synthesis generate``), or None when the root has no such file."""
    if not root:
        return None
    import json

    root = Path(root)
    for cand in (
        root / "SYNTHESIS.json",
        root.parent.parent / "SYNTHESIS.json",
    ):  # the root, or its mimic-cxr-jpg/2.0.0
        if cand.is_file():
            summary = json.loads(cand.read_text())
            return {k: summary.get(k) for k in SYNTHESIS_SETTINGS}
    return None


def synthetic_image_path(files_dir: Path, subject_id: int, study_id: int, dicom_id: str) -> Path | None:
    subject = f"p{subject_id}"
    study_dir = files_dir / subject[:3] / subject / f"s{study_id}"
    for suffix in IMAGE_SUFFIXES:
        p = study_dir / f"{dicom_id}{suffix}"
        if p.is_file():
            return p
    if study_dir.is_dir():  # one image per report: the study's single synthetic image
        found = sorted(p for p in study_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if found:
            return found[0]
    return None


def mixed_is_synthetic(dicom_id: str, ratio: float, seed: int = 0) -> bool:
    """Deterministic per-pair draw: synthetic with probability ``ratio``."""
    h = hashlib.sha256(f"medvlp-mix:{seed}:{dicom_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < ratio


@dataclass(frozen=True)
class SourceSpec:
    kind: str = "real"  # real | synthetic | mixed
    synthetic_root: str | None = None
    ratio: float = 1.0  # share of synthetic images (mixed)
    generator: str | None = None  # name of the generator (recorded)
    mix_seed: int = 0

    def validate(self) -> None:
        if self.kind not in IMAGE_SOURCES:
            raise ConfigError(f"--image-source must be one of {', '.join(IMAGE_SOURCES)}, got {self.kind!r}")
        if self.kind != "real" and not self.synthetic_root:
            raise ConfigError(
                f"--image-source {self.kind} needs --synthetic-root DIR "
                "(a synthetic image set in the MIMIC-CXR-JPG layout)"
            )
        if self.kind == "mixed" and not 0.0 <= self.ratio <= 1.0:
            raise ConfigError(f"--synthetic-ratio must be in [0, 1], got {self.ratio}")

    def label(self) -> str:
        if self.kind == "real":
            return "real"
        gen = self.generator or "synthetic"
        return gen if self.kind == "synthetic" else f"mixed{round(self.ratio * 100)}-{gen}"


def assign_images(frame: pd.DataFrame, source: SourceSpec) -> pd.DataFrame:
    """Set ``image_path`` (and ``image_kind``) for the chosen source."""
    source.validate()
    frame = frame.copy()
    frame["image_kind"] = "real"
    if source.kind == "real":
        return frame
    files_dir = synthetic_files_dir(source.synthetic_root)
    use = [
        source.kind == "synthetic" or mixed_is_synthetic(d, source.ratio, source.mix_seed) for d in frame["dicom_id"]
    ]
    paths, missing = list(frame["image_path"]), []
    for i, (flag, row) in enumerate(zip(use, frame[["subject_id", "study_id", "dicom_id"]].itertuples(index=False))):
        if not flag:
            continue
        p = synthetic_image_path(files_dir, row.subject_id, row.study_id, row.dicom_id)
        if p is not None:
            paths[i] = str(p)
        else:
            missing.append(row.dicom_id)
    if missing:
        raise DatasetNotFoundError(
            f"--synthetic-root {source.synthetic_root} does not cover this run's pair set: {len(missing)} of the "
            f"{sum(use)} pairs drawn as synthetic have no image under {files_dir} (first dicom_ids: "
            f"{', '.join(missing[:5])}). A run never drops pairs for lack of a synthetic image (real and synthetic "
            "runs must train on the same pairs): generate the missing images with `python -m recipes.synthesis "
            "generate --data-root <the same data root> --output <this root>` (it resumes and plans exactly this pair "
            "set; no --limit/--splits), or use --image-source real."
        )
    frame["image_path"] = paths
    frame["image_kind"] = ["synthetic" if f else "real" for f in use]
    return frame


# ------------------------------------------------------------------------------ pair table
def load_pretraining_pairs(
    data_root: str | Path, source: SourceSpec | None = None, *, limit: int | None = None
) -> pd.DataFrame:
    """The pair set of ``data_root`` (:func:`recipes.mimic.pair_set.pair_set`) with ``image_path``
    and ``image_kind`` set for ``source``; the same rows, in the same order, for every source."""
    frame = pair_set(data_root, limit=limit)
    return assign_images(frame, source or SourceSpec()).reset_index(drop=True)


# ------------------------------------------------------------------------------ images
@dataclass(frozen=True)
class ImageSpec:
    resize: int = 256
    crop: int = 224

    def load(self, path: str) -> np.ndarray:
        """The deterministic part: MGCA's resize_img (longer side -> ``resize`` with INTER_AREA,
        zero-pad to a square), (resize, resize) uint8; what the image cache stores."""
        return decode_resized(path, self.resize)

    def augment(self, image: np.ndarray, train: bool, seed: int) -> torch.Tensor:
        """The per-step part, on a :meth:`load` output: MGCA's DataTransforms, RandomCrop (train)
        / CenterCrop (eval), [0, 1] -> mean 0.5 / std 0.5. Returns (1, crop, crop); the model
        replicates grey to 3 channels."""
        image = random_crop(image, self.crop, np.random.default_rng(seed)) if train else centre_crop(image, self.crop)
        x = torch.from_numpy(np.ascontiguousarray(image)).float().div_(255.0)
        return x.sub_(0.5).div_(0.5).unsqueeze(0)


def item_seed(seed: int, epoch: int, index: int) -> int:
    h = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


def stop_at_word_count(sentences: Sequence[str], stop: int) -> list[str]:
    """GLoRIA's ``create_path_2_sent_mapping`` rule: keep sentences in order and stop after the
    one at which the running word count EQUALS ``stop`` (it never stops when the count jumps
    over it); ``stop`` 0 keeps all."""
    if stop <= 0:
        return list(sentences)
    kept, count = [], 0
    for sentence in sentences:
        kept.append(sentence)
        count += len(sentence.split())
        if count == stop:
            break
    return kept


@dataclass(frozen=True)
class TextInput:
    """What a pair's text input is: ``caption`` (the whole MGCA caption) or ``sentence`` (one
    sentence of its list, drawn uniformly per step; see :mod:`recipes.pretraining.presets`)."""

    kind: str = "caption"
    stop_words: int = 0  # sentence: GLoRIA's stop rule (0 = off)

    def sentences(self, impression: str | None, findings: str | None) -> list[str]:
        return stop_at_word_count(caption_sentences(impression, findings), self.stop_words)

    def pick(self, sentences: Sequence[str], seed: int, index: int) -> str:
        """One sentence, a function of (seed, index) only."""
        return sentences[int(np.random.default_rng([seed, index, 7]).integers(len(sentences)))]


class PairDataset(Dataset):
    """Indexed by (row index, augmentation seed) pairs from :class:`StepBatches`. With ``cached``
    (:mod:`recipes.pretraining.image_cache`, row i = ``frame`` row i) the resized images come
    from the cache instead of being decoded and resized at every access; the result is the same."""

    def __init__(
        self,
        frame: pd.DataFrame,
        captioner: Captioner,
        image: ImageSpec,
        train: bool,
        text: TextInput | None = None,
        cached: CachedImages | None = None,
    ):
        if cached is not None and (len(cached) != len(frame) or cached.resize != image.resize):
            raise ConfigError(
                f"image cache: {len(cached)} images at {cached.resize} px for {len(frame)} pairs at {image.resize} px"
            )
        self.cached = cached
        self.paths = list(frame["image_path"])
        self.captions = list(frame["caption"])
        self.ids = list(frame["dicom_id"])
        self.captioner = captioner
        self.image = image
        self.train = train
        self.text = text or TextInput()
        self.sentences = None
        if self.text.kind == "sentence":
            self.sentences = [self.text.sentences(i, f) for i, f in zip(frame["impression"], frame["findings"])]

    def __len__(self) -> int:
        return len(self.paths)

    def text_of(self, index: int, seed: int) -> str:
        """The text input of pair ``index`` for augmentation seed ``seed`` (the per-step seed of a
        training item; 0 for validation items, which then draw from the pair alone)."""
        if self.sentences is None:
            return self.captions[index]
        return self.text.pick(self.sentences[index], seed, index)

    def __getitem__(self, key):
        index, seed = key
        item = self.captioner(self.text_of(index, seed))
        resized = self.cached[index] if self.cached is not None else self.image.load(self.paths[index])
        item["image"] = self.image.augment(resized, self.train, seed)
        item["index"] = index
        return item


def collate(items: list[dict]) -> dict[str, Any]:
    """Stack the items; ``host_n_words`` keeps the word counts as a Python list, so code on an
    accelerator can size tensors by them without reading the device (no host sync)."""
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        out[key] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else torch.tensor(vals)
    if "n_words" in items[0]:
        out["host_n_words"] = [int(it["n_words"]) for it in items]
    return out


class StepBatches:
    """Deterministic, resumable batches: epoch ``e`` is a permutation of the pairs drawn
    from ``seed + e``; micro-step ``m`` of the epoch holds positions
    ``[m*G, (m+1)*G)`` (G = per-rank batch x world size) and rank ``r`` takes its
    ``[r*B, (r+1)*B)`` part, so a DDP run and a single-process run with the same global
    batch see the same pairs. Incomplete last batches are dropped."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        world: int = 1,
        rank: int = 0,
        seed: int = 0,
        epoch: int = 0,
        start: int = 0,
        shuffle: bool = True,
        train: bool = True,
    ):
        self.n, self.b, self.world, self.rank = n, batch_size, world, rank
        self.seed, self.epoch, self.start, self.shuffle, self.train = seed, epoch, start, shuffle, train

    @staticmethod
    def steps_per_epoch(n: int, batch_size: int, world: int) -> int:
        return n // (batch_size * world)

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch(self.n, self.b, self.world) - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        g_size = self.b * self.world
        for m in range(self.start, self.steps_per_epoch(self.n, self.b, self.world)):
            part = order[m * g_size + self.rank * self.b : m * g_size + (self.rank + 1) * self.b]
            yield [(i, item_seed(self.seed, self.epoch, i) if self.train else 0) for i in part]
