"""The pretraining pair set: ONE set of (image, report) pairs per (data root, filters), used by
real, synthetic and mixed pretraining runs and by the synthesis recipe, so that a
real-vs-synthetic comparison changes only the image source.

Captions (re-implemented from MGCA's ``create_path_2_sent_mapping``, not copied):
IMPRESSION + " " + FINDINGS, newlines -> spaces, split into points at ``<number>.`` and into
sentences at ``.``; each sentence is lower-cased and cut into ``\\w+`` word tokens (non-ASCII
characters dropped); sentences of one token or less are dropped; a study whose kept
sentences hold fewer than 3 tokens is dropped.

Filters: frontal views (PA/AP); caption of at least ``MIN_CAPTION_TOKENS`` (3) tokens; the
official splits ``train`` (subset ``train``) and ``validate`` + ``test`` (subset ``valid``,
merged as MGCA does). The study's 213,384 pairs are this rule applied to MIMIC-CXR 2.0.0.

Synthesis prompt (our documented choice): the report's IMPRESSION when it has at least 3
``\\w+`` tokens (the synthetic-data study prompts with the impression); otherwise the
IMPRESSION and FINDINGS joined by a space, i.e. the FINDINGS for the usual report without an
impression. A pair's caption is cut from these two sections, so every pair of the set
gets a prompt of at least 3 tokens. The prompt is the report text (CLIP-tokenised and
truncated by the synthesis recipe), not the MGCA caption.

Identity: :func:`pair_set_summary` gives the counts per subset and a sha256 over the sorted
``dicom_id,subset`` lines. It does not depend on the image source, so a real and a synthetic
run over one data root print and record the same value.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .pairs import count_tokens, load_pairs

TRAIN_SPLITS = ("train",)
VALID_SPLITS = ("validate", "test")
MIN_CAPTION_TOKENS = 3
MIN_PROMPT_TOKENS = 3
_POINT = re.compile(r"[0-9]+\.")
_WORD = re.compile(r"\w+")


def caption_sentences(impression: str | None, findings: str | None) -> list[str]:
    """MGCA's sentence list for one study (see module docstring)."""
    text = f"{impression or ''} {findings or ''}".replace("\n", " ")
    sentences = []
    for point in _POINT.split(text):
        for piece in point.split("."):
            if not piece:
                continue
            piece = piece.replace("\ufffd\ufffd", " ")
            tokens = _WORD.findall(piece.lower())
            if len(tokens) <= 1:
                continue
            kept = [t.encode("ascii", "ignore").decode("ascii") for t in tokens]
            kept = [t for t in kept if t]
            if kept:
                sentences.append(" ".join(kept))
    return sentences


def make_caption(impression: str | None, findings: str | None) -> tuple[str, int]:
    """(caption, number of word tokens)."""
    sentences = caption_sentences(impression, findings)
    return " ".join(sentences), sum(len(s.split()) for s in sentences)


def synthesis_prompt(impression: str | None, findings: str | None) -> tuple[str, str]:
    """(prompt, section it came from: ``impression`` or ``impression+findings``); see the
    module docstring."""
    impression, findings = (impression or "").strip(), (findings or "").strip()
    if count_tokens(impression) >= MIN_PROMPT_TOKENS:
        return impression, "impression"
    return " ".join(t for t in (impression, findings) if t), "impression+findings"


def pair_set(data_root: str | Path, *, limit: int | None = None) -> pd.DataFrame:
    """The pairs of ``data_root`` under the filters above, one row per frontal image, sorted by
    (subject_id, study_id, dicom_id): the ``load_pairs`` columns plus ``caption``,
    ``caption_tokens``, ``subset`` (train / valid), ``prompt`` and ``prompt_section``.
    ``limit`` (debugging) keeps the first N pairs of each subset."""
    frame = load_pairs(data_root, frontal_only=True, min_tokens=0, section="impression")
    made = [make_caption(i, f) for i, f in zip(frame["impression"], frame["findings"])]
    frame = frame.assign(caption=[c for c, _ in made], caption_tokens=[n for _, n in made])
    frame = frame[frame["caption_tokens"] >= MIN_CAPTION_TOKENS]
    frame = frame[frame["split"].isin(TRAIN_SPLITS + VALID_SPLITS)]
    prompts = [synthesis_prompt(i, f) for i, f in zip(frame["impression"], frame["findings"])]
    frame = frame.assign(
        subset=np.where(frame["split"].isin(TRAIN_SPLITS), "train", "valid"),
        prompt=[p for p, _ in prompts],
        prompt_section=[s for _, s in prompts],
    )
    frame = frame.reset_index(drop=True)
    if limit:
        keep = frame.groupby("subset", sort=False).cumcount() < int(limit)
        frame = frame[keep].reset_index(drop=True)
    return frame


def pair_set_summary(frame: pd.DataFrame) -> dict:
    """``{"train": n, "valid": n, "pairs": n, "sha256": hex}`` of a pair table (a
    :func:`pair_set` frame or a subset of it); the hash covers the sorted ``dicom_id,subset``
    lines, not the images."""
    lines = sorted(f"{d},{s}" for d, s in zip(frame["dicom_id"].astype(str), frame["subset"]))
    digest = hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
    counts = frame["subset"].value_counts()
    return {
        "train": int(counts.get("train", 0)),
        "valid": int(counts.get("valid", 0)),
        "pairs": len(frame),
        "sha256": digest,
    }


def describe(summary: dict) -> str:
    """One line for logs: ``pair set: 174 train + 26 valid = 200 pairs, sha256 ab12cd34ef56``."""
    return (
        f"pair set: {summary['train']} train + {summary['valid']} valid = {summary['pairs']} pairs, "
        f"sha256 {summary['sha256'][:12]}"
    )
