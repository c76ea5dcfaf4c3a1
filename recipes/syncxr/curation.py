"""Step 4b, ``curate``: a local multimodal model keeps or discards each synthetic image.

Model: any local ``transformers`` image-text-to-text folder (``AutoProcessor`` +
``AutoModelForImageTextToText``, ``local_files_only=True``; e.g. an InternVL, LLaVA, Idefics or
Qwen2-VL snapshot in the transformers format). The image and :data:`QUESTION` (our wording: the
study's criteria are not published) go through the processor's chat template when it has one,
else a plain ``<image>`` prompt ending with "Answer:".

Rule (our choice, deterministic: no sampling): from the logits of the answer's FIRST token,
``p(yes)`` is the softmax mass of the "yes" tokens renormalised over the "yes" and "no" tokens
(the first token of each spelling in :data:`YES_WORDS` / :data:`NO_WORDS`); the image is KEPT
when ``p(yes) >= threshold`` (default 0.5). Images that the synthesis recipe flagged as still
non-finite or constant after its one retry are discarded without asking (reason
``synthesis: ...``). Every image keeps a row in ``curation.csv`` (p_yes, keep, reason); the
manifest counts the kept and discarded images by reason.

Images are cut into global batches of ``--batch-size`` in sample order (``--shard I/N``,
torchrun ranks; resumable per batch like the other steps).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.errors import BenchmarkError, ConfigError

from .images import folder as images_folder
from .reports import quiet_transformers, resolve_device
from .sampling import read_samples
from .steps import (
    BatchStore,
    Timer,
    batch_count,
    file_sha256,
    folder_lock,
    log,
    model_record,
    progress_bar,
    provenance,
    read_manifest,
    start_batched_step,
    write_manifest,
)

STEP = "curation"
TABLE = "curation.csv"
QUESTION = (
    "Is this image a realistic frontal chest X-ray of diagnostic quality, with the whole chest visible, plausible "
    "anatomy, and no artefacts, text, noise or distortions? Answer yes or no."
)
YES_WORDS = ("yes", "Yes", " yes", " Yes", "YES")
NO_WORDS = ("no", "No", " no", " No", "NO")
DEFAULT_THRESHOLD = 0.5
RULE = (
    "keep iff p(yes) >= threshold; p(yes) = softmax mass of the first answer token on the yes tokens, renormalised "
    "over the yes and no tokens; images the synthesis recipe marked bad after its retry are discarded unasked"
)
COLUMNS = ("index", "sample_id", "dicom_id", "subject_id", "study_id", "path", "p_yes", "keep", "reason")


@dataclass
class CurationConfig:
    work: Path
    mllm: Path | None = None
    judge: object | None = None  # instead of mllm: any object with describe() and p_yes(images)
    threshold: float = DEFAULT_THRESHOLD
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    shard: str | None = None
    overwrite: bool = False
    progress: bool = True


def folder(work: Path) -> Path:
    return Path(work) / STEP


def answer_token_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    ids = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if encoded and encoded[0] != tokenizer.unk_token_id:
            ids.append(int(encoded[0]))
    return sorted(set(ids))


class ImageJudge:
    """A local image-text-to-text model answering :data:`QUESTION` (see the module docstring)."""

    def __init__(self, model_dir: str | Path, *, device: str = "auto", dtype: str = "auto"):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise ConfigError(
                f"--mllm {model_dir}: not a transformers model folder (no config.json). Pass a local "
                "image-text-to-text model folder (e.g. an InternVL snapshot in the transformers format); "
                "nothing is downloaded."
            )
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        quiet_transformers()
        self.device, self.dtype_name, torch_dtype = resolve_device(device, dtype)
        self.processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True, dtype=torch_dtype)
        self.model = self.model.to(self.device).eval()
        self.yes = answer_token_ids(tokenizer, YES_WORDS)
        self.no = answer_token_ids(tokenizer, NO_WORDS)
        if not self.yes or not self.no or set(self.yes) & set(self.no):
            raise ConfigError(
                f"--mllm {model_dir}: its tokenizer has no distinct first tokens for yes ({self.yes}) and "
                f"no ({self.no})"
            )
        self.prompt = self.render()
        self.record = model_record(model_dir)
        self._torch = torch

    def render(self) -> str:
        if getattr(self.processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        token = getattr(self.processor, "image_token", None)
        if not token:
            raise ConfigError("the --mllm processor has neither a chat template nor an image token to place the image")
        return f"{token}\n{QUESTION}\nAnswer:"

    def describe(self) -> dict:
        return {
            "kind": "transformers-image-text-to-text",
            "model": self.record,
            "architecture": type(self.model).__name__,
            "prompt": self.prompt,
            "yes_token_ids": self.yes,
            "no_token_ids": self.no,
            "dtype": self.dtype_name,
        }

    def p_yes(self, images: list) -> list[float]:
        torch = self._torch
        nested = [[image] for image in images]  # one image per prompt (the form every processor accepts)
        inputs = self.processor(images=nested, text=[self.prompt] * len(images), return_tensors="pt", padding=True)
        inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, :].float()
        both = torch.log_softmax(logits[:, self.yes + self.no], dim=-1)
        return [float(v) for v in both[:, : len(self.yes)].exp().sum(dim=-1).cpu()]


def judge_settings(cfg: CurationConfig) -> dict:
    if cfg.judge is not None:
        return cfg.judge.describe()
    if cfg.mllm is None:
        raise ConfigError("the curate step needs --mllm DIR (a local transformers image-text-to-text model folder)")
    _, dtype_name, _ = resolve_device(cfg.device, cfg.dtype)
    return {"kind": "transformers-image-text-to-text", "model": model_record(cfg.mllm), "dtype": dtype_name}


def images_table(work: Path) -> pd.DataFrame:
    """The synthesis manifest of ``<work>/images`` joined to the entity sets, in sample order;
    refuses an incomplete image set."""
    from recipes.synthesis.generate import read_manifest as read_synthesis_manifest

    read_manifest(images_folder(work), "images", "`python -m recipes.syncxr images` (all shards)")
    manifest = read_synthesis_manifest(images_folder(work))
    samples = pd.DataFrame(read_samples(work))[["index", "sample_id", "dicom_id"]]
    frame = samples.merge(manifest, on="dicom_id", how="left")
    missing = frame[frame["path"].isna()]
    if len(missing):
        raise BenchmarkError(
            f"{images_folder(work)}: {len(missing)} of {len(frame)} synthetic reports have no image (e.g. "
            f"{missing['sample_id'].iloc[0]}); finish `python -m recipes.syncxr images` (all shards) first"
        )
    return frame.sort_values("index").reset_index(drop=True)


def load_image(path: Path):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def run(cfg: CurationConfig) -> dict | None:
    timer = Timer()
    if not 0 <= cfg.threshold <= 1:
        raise ConfigError(f"--keep-threshold must be in [0, 1], got {cfg.threshold}")
    table = images_table(cfg.work)
    images_manifest = json.loads((images_folder(cfg.work) / "manifest.json").read_text())
    settings = {
        "judge": judge_settings(cfg),
        "question": QUESTION,
        "yes_words": list(YES_WORDS),
        "no_words": list(NO_WORDS),
        "rule": RULE,
        "threshold": float(cfg.threshold),
        "batch_size": int(cfg.batch_size),
        "images_sha256": hashlib.sha256("\n".join(table["sha256"].astype(str)).encode()).hexdigest(),
        "images_settings_sha256": images_manifest["settings_sha256"],
    }
    out = folder(cfg.work)
    store, (n_batches, index, count, done, todo) = start_batched_step(
        out, settings, STEP, len(table), cfg.batch_size, cfg.shard, cfg.overwrite
    )
    log(
        f"curate: {len(table)} images in {n_batches} batches; shard {index}/{count}: {len(done)} done, "
        f"{len(todo)} to do"
    )
    judged, seconds = 0, 0.0
    if todo:
        judge = cfg.judge or ImageJudge(cfg.mllm, device=cfg.device, dtype=cfg.dtype)
        bar = progress_bar(
            sum(len(table.iloc[b * cfg.batch_size : (b + 1) * cfg.batch_size]) for b in todo),
            STEP,
            cfg.progress,
            unit="img",
        )
        t = Timer()
        for batch in todo:
            part = table.iloc[batch * cfg.batch_size : (batch + 1) * cfg.batch_size]
            bad = [str(b) for b in part["bad"].fillna("").astype(str)]
            ask = [k for k, problem in enumerate(bad) if not problem]
            scores = (
                judge.p_yes([load_image(images_folder(cfg.work) / part["path"].iloc[k]) for k in ask]) if ask else []
            )
            p_yes = dict(zip(ask, scores))
            records = []
            for k, row in enumerate(part.itertuples(index=False)):
                if bad[k]:
                    keep, reason, score = False, f"synthesis: {bad[k]} after its retry", None
                else:
                    score = p_yes[k]
                    keep = score >= cfg.threshold
                    reason = "" if keep else f"mllm: p(yes) {score:.4f} < {cfg.threshold}"
                records.append(
                    {
                        "index": int(row.index),
                        "sample_id": row.sample_id,
                        "dicom_id": row.dicom_id,
                        "subject_id": int(row.subject_id),
                        "study_id": int(row.study_id),
                        "path": row.path,
                        "p_yes": None if score is None else round(score, 6),
                        "keep": bool(keep),
                        "reason": reason,
                    }
                )
            store.write(batch, records)
            judged += len(records)
            bar.update(len(records))
        bar.close()
        seconds = t.seconds
    shard_info = {
        "index": index,
        "count": count,
        "images": judged,
        "seconds": round(seconds, 3),
        "images_per_s": round(judged / seconds, 4) if judged and seconds else None,
        "total_seconds": round(timer.seconds, 3),
    }
    write_manifest(out, {"step": STEP, "shard": shard_info}, f"manifest.{index}-of-{count}.json")
    return merge(cfg.work)


def merge(work: Path) -> dict | None:
    out = folder(work)
    settings_path = out / "settings.json"
    if not settings_path.is_file():
        raise BenchmarkError(f"{out}: no curation batches yet; run `python -m recipes.syncxr curate` first")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    store = BatchStore(out, settings, STEP)
    n_batches = batch_count(len(read_samples(work)), settings["batch_size"])
    with folder_lock(out):
        if not store.complete(n_batches):
            present = sum(1 for b in range(n_batches) if store.read(b))
            log(f"curate: {present}/{n_batches} batches present; merged when every shard has finished")
            return None
        frame = pd.DataFrame(store.records(n_batches), columns=list(COLUMNS))
        atomic_write_text(out / TABLE, frame.to_csv(index=False, lineterminator="\n"))
        discarded = frame[~frame["keep"]]
        reasons = discarded["reason"].str.split(":").str[0].value_counts().to_dict()
        manifest = {
            "step": STEP,
            "settings": settings,
            "settings_sha256": store.key,
            "images": len(frame),
            "kept": int(frame["keep"].sum()),
            "discarded": len(discarded),
            "discarded_by": {str(k): int(v) for k, v in sorted(reasons.items())},
            "table": TABLE,
            "table_sha256": file_sha256(out / TABLE),
            "shards": [json.loads(p.read_text())["shard"] for p in sorted(out.glob("manifest.*-of-*.json"))],
            **provenance(),
        }
        write_manifest(out, manifest)
    log(
        f"curate: kept {manifest['kept']} of {manifest['images']} images, discarded {manifest['discarded']} "
        f"({manifest['discarded_by']}); every image is listed with its reason in {out / TABLE}"
    )
    return manifest


def read_curation(work: Path) -> pd.DataFrame:
    read_manifest(folder(work), STEP, "`python -m recipes.syncxr curate` (all shards)")
    return pd.read_csv(folder(work) / TABLE, dtype={"dicom_id": str, "reason": str}, keep_default_na=False)
