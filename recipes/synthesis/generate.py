"""Generate one synthetic chest X-ray per MIMIC-CXR image/report pair with a local Stable Diffusion.

The pairs are the pretraining pair set (``recipes.mimic.pair_set``: frontal images whose MGCA
caption has >= 3 tokens, official train/validate/test splits), so a finished synthetic root
covers every pair a real pretraining run uses. The prompt is the report's IMPRESSION, or its
IMPRESSION + FINDINGS when the impression has fewer than 3 tokens (our choice, documented there).

Input: a MIMIC-CXR-JPG + reports data root (``recipes.mimic`` layout) and a diffusers
``StableDiffusionPipeline`` directory (a Stable Diffusion 2.1 snapshot or the RoentGen
release), read with ``local_files_only=True``. Output (``--output OUT``) is a drop-in data root::

    OUT/mimic-cxr-jpg/2.0.0/files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg   (grey JPEG, quality 95)
    OUT/mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-{metadata,split,chexpert}.csv.gz
    OUT/mimic-cxr-jpg/2.0.0/metadata.csv     (file_name + prompt and settings: a Hugging Face imagefolder)
    OUT/mimic-cxr/2.0.0/files -> <data root>/mimic-cxr/2.0.0/files   (the real reports; or a copy)
    OUT/synthesis_manifest.csv               (merged, one row per image, sorted by ids)
    OUT/synthesis_manifest.<i>-of-<n>.csv    (one per shard, appended as images are written)
    OUT/SYNTHESIS.json                       (settings, counts, provenance)

so ``recipes.mimic.pair_set.pair_set(OUT)`` returns the (synthetic image, real report) pairs with no
conversion. The csv.gz files are the real ones restricted to the generated images (``Rows`` /
``Columns`` set to the synthetic size); they are (re)written when a shard finishes.

Reproducibility: every image has its own seed (one fixed seed for all, as in the paper, or one
derived from its ``dicom_id``) and its own initial latents drawn on the CPU in fp32 from that
seed, so its start noise never depends on the batch, shard or device. The pairs are cut into
GLOBAL batches of ``--batch-size`` (in id order) and shards take whole batches, so a batch holds
the same images whatever the shard count, launcher or resume state: with the same batch size,
software and GPU model, every image is bit-identical (tested on the CPU; checked on an H200).
Bad images: an image whose sampler output holds NaN or inf (written as black) or that is one
grey level everywhere is regenerated ONCE with the next seed (``seed + 1``; all bad images of a
batch together, so the retry repeats exactly on a rerun); the manifest records ``image_seed``
(the seed that produced the file), ``retry`` (why it was regenerated) and ``bad`` (its problem
after the retry; such an image is kept and counted). ``SYNTHESIS.json`` counts them under
``image_checks``, with the images that repeat another image's prompt (with one fixed seed the
frontal images of one study are the same picture) and the byte-identical ones.
Batched fp16/bf16 CUDA kernels are not batch-invariant: on an H200 the same image generated in
batches of other sizes differed by up to ~8 grey levels (tiny model, 4 steps), so keep
``--batch-size`` fixed across the shards and resumptions of one dataset.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.provenance import git_state, package_versions
from recipes.mimic import MimicLayout
from recipes.mimic.pair_set import describe, pair_set, pair_set_summary

JPEG_QUALITY = 95
MANIFEST = "synthesis_manifest.csv"
SUMMARY = "SYNTHESIS.json"
MANIFEST_COLUMNS = (
    "dicom_id",
    "subject_id",
    "study_id",
    "split",
    "ViewPosition",
    "path",
    "prompt",
    "prompt_truncated",
    "prompt_tokens",
    "generator",
    "generator_fingerprint",
    "preset",
    "scheduler",
    "steps",
    "guidance",
    "seed",
    "height",
    "width",
    "dtype",
    "batch",
    "sha256",
    "image_seed",
    "retry",
    "bad",
)
# columns added later: manifests written before them read with these values
LATER_COLUMNS = {"image_seed": None, "retry": "", "bad": ""}
# a manifest row may be reused only if these match the run's settings
SETTINGS_COLUMNS = ("prompt", "generator_fingerprint", "scheduler", "steps", "guidance", "seed", "height", "width")


@dataclass(frozen=True)
class Preset:
    height: int
    width: int
    steps: int
    guidance: float
    scheduler: str  # "default" = the scheduler saved with the model


PRESETS = {
    # Stable Diffusion 2.1 as in the synthetic-data paper: 512x512, 50 steps; guidance 7.5 and the
    # snapshot's own scheduler (DDIM for the SD 2.1 releases) are diffusers' defaults.
    "sd21": Preset(512, 512, 50, 7.5, "default"),
    # RoentGen authors' sampling: guidance 4, 75 PNDM steps (the synthetic-data paper used 50: --steps 50)
    "roentgen": Preset(512, 512, 75, 4.0, "pndm"),
}
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddpm": "DDPMScheduler",
}


@dataclass
class GenerationConfig:
    data_root: Path
    model: Path
    output: Path
    preset: str = "sd21"
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    scheduler: str | None = None
    seed: int = 42
    seed_mode: str = "fixed"  # fixed | per-report
    batch_size: int = 8
    dtype: str = "auto"  # auto | fp16 | bf16 | fp32
    device: str = "auto"
    shard: str | None = None  # "i/n"
    limit: int | None = None
    splits: tuple[str, ...] | None = None
    reports: str = "symlink"  # symlink | copy | none
    generator_name: str | None = None
    overwrite: bool = False
    progress: bool = True

    def resolved(self) -> dict:
        preset = PRESETS[self.preset]
        return {
            "height": self.height or preset.height,
            "width": self.width or preset.width,
            "steps": self.steps or preset.steps,
            "guidance": float(preset.guidance if self.guidance is None else self.guidance),
            "scheduler": self.scheduler or preset.scheduler,
        }


# ----------------------------------------------------------------------------------- shards
def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard expects I/N (0-based I), e.g. 0/4, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= I < N")
    return i, n


def launcher_rank() -> tuple[int, int, int | None]:
    """(rank, world size, local rank) from torchrun / accelerate / Slurm-style env vars."""
    env = os.environ
    local = int(env["LOCAL_RANK"]) if env.get("LOCAL_RANK", "").isdigit() else None
    if env.get("RANK", "").isdigit() and env.get("WORLD_SIZE", "").isdigit():
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    elif local is not None:
        rank, world = local, int(env.get("LOCAL_WORLD_SIZE", "1") or 1)
    else:
        rank, world = 0, 1
    if not 0 <= rank < max(world, 1):
        raise ConfigError(f"launcher env: RANK={rank} is not below WORLD_SIZE={world}")
    return rank, max(world, 1), local


def effective_shard(shard: str | None) -> tuple[int, int]:
    """``--shard i/n`` composed with launcher ranks: shard ``i*W + rank`` of ``n*W``."""
    i, n = parse_shard(shard)
    rank, world, _ = launcher_rank()
    return i * world + rank, n * world


def shard_rows(frame: pd.DataFrame, index: int, count: int, batch_size: int = 1) -> pd.DataFrame:
    """Whole batches round-robin: the id-sorted pairs are cut into global batches of
    ``batch_size`` (rows 0..B-1, B..2B-1, ...), and shard k of n takes batches k, k+n, ...
    A batch therefore holds the same images whatever the shard count or resume state, which
    keeps GPU outputs bit-identical across shardings (batched fp16 kernels are not
    batch-invariant; see the module docstring). Adds the column ``batch``."""
    frame = frame.assign(batch=np.arange(len(frame)) // max(1, int(batch_size)))
    return frame[frame["batch"] % count == index]


# ----------------------------------------------------------------------------------- prompts
def count_clip_tokens(tokenizer, texts: list[str]) -> list[int]:
    """Tokens of each text including the start and end tokens (what the 77 limit counts)."""
    if not texts:
        return []
    ids = tokenizer(texts, truncation=False, padding=False, add_special_tokens=True)["input_ids"]
    return [len(x) for x in ids]


def truncate_prompts(tokenizer, texts: list[str], limit: int | None = None) -> tuple[list[str], list[bool], list[int]]:
    """Cut each text to the longest prefix of whole words that fits the tokenizer's limit
    (77 for CLIP, start and end tokens included). Returns (prompts, truncated?, token counts
    of the full texts). Cutting at a word boundary means the pipeline encodes exactly the
    recorded prompt (it never truncates again); a hard token cut would differ by at most the
    tail of one word."""
    limit = int(limit or tokenizer.model_max_length)
    counts = count_clip_tokens(tokenizer, texts)
    prompts, truncated = list(texts), [c > limit for c in counts]
    for k, (text, over) in enumerate(zip(texts, truncated)):
        if not over:
            continue
        words = text.split()
        lo, hi = 0, len(words)  # largest n with tokens(words[:n]) <= limit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_clip_tokens(tokenizer, [" ".join(words[:mid])])[0] <= limit:
                lo = mid
            else:
                hi = mid - 1
        prompts[k] = " ".join(words[:lo])
    return prompts, truncated, counts


def image_seed(base: int, mode: str, dicom_id: str) -> int:
    if mode == "fixed":
        return int(base)
    if mode == "per-report":
        digest = hashlib.sha256(f"{int(base)}:{dicom_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)
    raise ConfigError(f"--seed-mode must be fixed or per-report, got {mode!r}")


# ----------------------------------------------------------------------------------- model
def model_fingerprint(model: Path, chunk: int = 1 << 20) -> str:
    """sha256 over the pipeline's files: configs and tokenizer files in full; weight files by
    name, size, first and last MiB (hashing gigabytes of weights on every start would be slow)."""
    digest = hashlib.sha256()
    for path in sorted(
        p
        for p in model.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model).parts)
    ):
        rel = path.relative_to(model).as_posix()
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with open(path, "rb") as handle:
            if size <= 4 * chunk or path.suffix in (".json", ".txt", ".model"):
                digest.update(handle.read())
            else:
                digest.update(handle.read(chunk))
                handle.seek(size - chunk)
                digest.update(handle.read(chunk))
    return digest.hexdigest()[:16]


def resolve_device_dtype(device: str, dtype: str):
    import torch

    _, _, local = launcher_rank()
    if device == "auto":
        device = f"cuda:{local or 0}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device}: CUDA is not available here (torch {torch.__version__}); use --device cpu"
        )
    names = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if dtype == "auto":
        dtype = "fp16" if dev.type == "cuda" else "fp32"
    if dtype not in names:
        raise ConfigError(f"--dtype must be auto, fp16, bf16 or fp32, got {dtype!r}")
    if dev.type == "cpu" and dtype != "fp32":
        raise ConfigError(f"--dtype {dtype} is for CUDA; on the CPU use fp32 (the default)")
    return dev, dtype, names[dtype]


def load_pipeline(model: Path, torch_dtype, device, scheduler: str = "default"):
    """``StableDiffusionPipeline.from_pretrained`` from a local directory only, safety checker off."""
    import diffusers
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as dlogging

    model = Path(model)
    if not (model / "model_index.json").is_file():
        raise ConfigError(
            f"--model {model}: not a diffusers pipeline directory (no model_index.json). Pass a local snapshot of "
            "Stable Diffusion 2.1 (e.g. stabilityai/stable-diffusion-2-1-base) or the RoentGen release in diffusers "
            "format; nothing is downloaded at run time."
        )
    from transformers.utils import logging as tlogging

    dlogging.set_verbosity_error()
    dlogging.disable_progress_bar()
    tlogging.set_verbosity_error()
    tlogging.disable_progress_bar()
    pipe = StableDiffusionPipeline.from_pretrained(
        model, local_files_only=True, safety_checker=None, requires_safety_checker=False, dtype=torch_dtype
    )
    if scheduler != "default":
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"--scheduler must be default or one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
        cls = getattr(diffusers, SCHEDULERS[scheduler])
        extra = {"skip_prk_steps": True} if scheduler == "pndm" else {}
        pipe.scheduler = cls.from_config(pipe.scheduler.config, **extra)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def initial_latents(pipe, seeds: list[int], height: int, width: int):
    """Per-image N(0, 1) latents drawn on the CPU in fp32 from each image's own generator, so
    an image's start noise is the same on any device, batch or shard."""
    import torch

    channels = pipe.unet.config.in_channels
    scale = pipe.vae_scale_factor
    shape = (1, channels, height // scale, width // scale)
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    latents = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return latents, generators


def synthesize_raw(
    pipe, prompts: list[str], seeds: list[int], *, height: int, width: int, steps: int, guidance: float
) -> np.ndarray:
    """The pipeline's float RGB output, (B, H, W, 3) in [0, 1] (NaN where the sampler diverged)."""
    import torch

    latents, generators = initial_latents(pipe, seeds, height, width)
    latents = latents.to(pipe.device, pipe.unet.dtype)
    with torch.inference_mode():
        return pipe(
            prompt=list(prompts),
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance,
            latents=latents,
            generator=generators,
            output_type="np",
        ).images


def to_grey(rgb01: np.ndarray) -> list[np.ndarray]:
    """Float RGB in [0, 1] -> grey uint8 (H, W) images; non-finite values become 0 (black)."""
    from PIL import Image

    rgb = (np.clip(np.nan_to_num(rgb01, nan=0.0, posinf=1.0, neginf=0.0), 0, 1) * 255).round().astype(np.uint8)
    return [np.asarray(Image.fromarray(im, "RGB").convert("L")) for im in rgb]


def image_problem(rgb01: np.ndarray, grey: np.ndarray) -> str:
    """'nonfinite' (the output holds NaN or inf), 'constant' (one grey level everywhere) or ''."""
    if not np.isfinite(rgb01).all():
        return "nonfinite"
    if int(grey.min()) == int(grey.max()):
        return "constant"
    return ""


def synthesize_checked(pipe, prompts: list[str], seeds: list[int], **settings) -> tuple[list[np.ndarray], list[str]]:
    """Grey uint8 images and each one's :func:`image_problem`."""
    raw = synthesize_raw(pipe, prompts, seeds, **settings)
    grey = to_grey(raw)
    return grey, [image_problem(r, g) for r, g in zip(raw, grey)]


def synthesize(
    pipe, prompts: list[str], seeds: list[int], *, height: int, width: int, steps: int, guidance: float
) -> list[np.ndarray]:
    """One grey uint8 (H, W) image per prompt."""
    return to_grey(synthesize_raw(pipe, prompts, seeds, height=height, width=width, steps=steps, guidance=guidance))


def retry_seed(seed: int) -> int:
    """The seed a bad image is regenerated with: the next one (kept within torch's 63-bit range)."""
    return (int(seed) + 1) % (1 << 63)


def synthesize_with_retry(
    pipe, prompts: list[str], seeds: list[int], **settings
) -> tuple[list[np.ndarray], list[dict]]:
    """Images plus, per image, ``image_seed`` (the seed that produced it), ``retry`` (why it was
    regenerated: '' / 'nonfinite' / 'constant') and ``bad`` (its problem after the one retry, '' if
    none). Every bad image of the batch is regenerated ONCE, together, with :func:`retry_seed`;
    the retry batch depends only on the batch, so a rerun repeats it exactly. An image still bad
    after the retry is kept (counted and reported), not retried again."""
    images, problems = synthesize_checked(pipe, prompts, seeds, **settings)
    info = [{"image_seed": int(s), "retry": "", "bad": ""} for s in seeds]
    redo = [k for k, problem in enumerate(problems) if problem]
    if redo:
        again, still = synthesize_checked(
            pipe, [prompts[k] for k in redo], [retry_seed(seeds[k]) for k in redo], **settings
        )
        for k, image, problem in zip(redo, again, still):
            images[k] = image
            info[k] = {"image_seed": retry_seed(seeds[k]), "retry": problems[k], "bad": problem}
    return images, info


# ----------------------------------------------------------------------------------- files
def jpeg_bytes(grey: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(grey, "L").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_image(path: Path, data: bytes) -> None:
    """Atomic: a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def image_ok(path: Path, sha256: str) -> bool:
    """Integrity check of a finished image: present, same sha256 as its manifest row, decodes."""
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != sha256:
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception:
        return False
    return True


def shard_manifest_path(output: Path, index: int, count: int) -> Path:
    return output / f"synthesis_manifest.{index}-of-{count}.csv"


def read_manifest_file(path: Path) -> pd.DataFrame:
    """A manifest, tolerant of a torn last line from a killed run."""
    try:
        frame = pd.read_csv(
            path,
            dtype={"dicom_id": str, "sha256": str, "prompt": str, "generator_fingerprint": str},
            keep_default_na=False,
            on_bad_lines="skip",
            engine="python",
        )
    except (pd.errors.EmptyDataError, FileNotFoundError):
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    if not set(MANIFEST_COLUMNS) - set(LATER_COLUMNS) <= set(frame.columns):
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    for column, default in LATER_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = frame["seed"] if column == "image_seed" else default
    good = frame["sha256"].astype(str).str.fullmatch(r"[0-9a-f]{64}")
    return frame[good].reset_index(drop=True)


def read_manifest(output: str | Path) -> pd.DataFrame:
    """The merged manifest of a synthetic data root (one row per generated image)."""
    path = Path(output) / MANIFEST
    if not path.is_file():
        raise BenchmarkError(
            f"{path}: no synthesis manifest (run `python -m recipes.synthesis generate` first, or `merge`)"
        )
    return read_manifest_file(path)


def existing_rows(output: Path) -> dict[str, dict]:
    """dicom_id -> newest manifest row over every shard manifest and the merged one."""
    paths = sorted(output.glob("synthesis_manifest.*-of-*.csv"), key=lambda p: p.stat().st_mtime_ns)
    if (output / MANIFEST).is_file():
        paths.insert(0, output / MANIFEST)
    rows: dict[str, dict] = {}
    for path in paths:
        for row in read_manifest_file(path).to_dict("records"):
            rows[str(row["dicom_id"])] = row
    return rows


def _same_settings(row: dict, want: dict) -> list[str]:
    diffs = []
    for key in SETTINGS_COLUMNS:
        a, b = row.get(key), want[key]
        if isinstance(b, float) or key == "guidance":
            same = math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
        elif isinstance(b, int):
            same = int(a) == b
        else:
            same = str(a) == str(b)
        if not same:
            diffs.append(f"{key}: {a!r} -> {b!r}")
    return diffs


class ManifestAppender:
    """Appends one CSV row per finished image (after its file was renamed into place)."""

    def __init__(self, path: Path):
        self.path = path
        new = not path.is_file() or path.stat().st_size == 0
        if not new:
            with open(path, "rb") as handle:  # a torn last line from a kill: start a fresh line
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
        self.handle = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=list(MANIFEST_COLUMNS), extrasaction="ignore")
        if new:
            self.writer.writeheader()
        elif torn:
            self.handle.write("\n")

    def add(self, row: dict) -> None:
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def write_manifest(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame[list(MANIFEST_COLUMNS)].to_csv(index=False, lineterminator="\n"))


IMAGEFOLDER_METADATA = "metadata.csv"


def write_imagefolder_metadata(output: Path, merged: pd.DataFrame) -> Path:
    """``OUT/mimic-cxr-jpg/2.0.0/metadata.csv``: one row per generated image of the merged manifest,
    ``file_name`` (the image's path relative to that folder) first, then the manifest's ids, split,
    prompt and generation settings (every column but ``path``), so that
    ``datasets.load_dataset("imagefolder", data_dir=OUT/mimic-cxr-jpg/2.0.0)`` reads each image with its
    prompt and settings. The MIMIC-CXR-JPG readers (``recipes.mimic``, the pretraining loader) open
    the official csv.gz files and ``files/`` by name and never list this folder, so the layout they
    read is unchanged."""
    jpg = MimicLayout(Path(output)).jpg
    frame = merged[[c for c in MANIFEST_COLUMNS if c != "path"]].copy()
    frame.insert(0, "file_name", [(Path(output) / p).relative_to(jpg).as_posix() for p in merged["path"]])
    path = jpg / IMAGEFOLDER_METADATA
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    return path


def _gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    os.replace(tmp, path)


def finalize(output: Path, data_root: Path, *, reports: str = "symlink", summary: dict | None = None) -> pd.DataFrame:
    """Merge the shard manifests (deterministically: sorted by subject, study, dicom id), write
    the MIMIC-CXR-JPG csv.gz files restricted to the generated images, and link or copy the
    reports. Runs under a file lock, so the last shard to finish sees every shard's rows."""
    output, data_root = Path(output), Path(data_root)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / ".synthesis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = existing_rows(output)
        merged = pd.DataFrame(list(rows.values()), columns=list(MANIFEST_COLUMNS))
        if len(merged):
            exists = [(output / p).is_file() for p in merged["path"]]
            merged = merged[exists]
            merged = merged.astype({"subject_id": int, "study_id": int})
            merged = merged.sort_values(["subject_id", "study_id", "dicom_id"]).reset_index(drop=True)
        write_manifest(output / MANIFEST, merged)

        real, synth = MimicLayout(data_root), MimicLayout(output)
        synth.jpg.mkdir(parents=True, exist_ok=True)
        write_imagefolder_metadata(output, merged)
        ids = set(merged["dicom_id"].astype(str))
        studies = set(zip(merged["subject_id"].astype(int), merged["study_id"].astype(int)))
        meta = pd.read_csv(real.jpg / "mimic-cxr-2.0.0-metadata.csv.gz", dtype={"dicom_id": str})
        meta = meta[meta["dicom_id"].isin(ids)].copy()
        size = merged.set_index("dicom_id")[["height", "width"]]
        if len(meta):
            meta["Rows"] = meta["dicom_id"].map(size["height"]).astype(int)
            meta["Columns"] = meta["dicom_id"].map(size["width"]).astype(int)
        _gzip_csv(meta, synth.jpg / "mimic-cxr-2.0.0-metadata.csv.gz")
        split = pd.read_csv(real.jpg / "mimic-cxr-2.0.0-split.csv.gz", dtype={"dicom_id": str})
        _gzip_csv(split[split["dicom_id"].isin(ids)], synth.jpg / "mimic-cxr-2.0.0-split.csv.gz")
        chexpert_path = real.jpg / "mimic-cxr-2.0.0-chexpert.csv.gz"
        if chexpert_path.is_file():
            chexpert = pd.read_csv(chexpert_path)
            keep = [(s, t) in studies for s, t in zip(chexpert["subject_id"], chexpert["study_id"])]
            _gzip_csv(chexpert[keep], synth.jpg / "mimic-cxr-2.0.0-chexpert.csv.gz")
        place_reports(real, synth, merged, reports)
        if summary is not None:
            planned = set(summary.pop("_planned_ids", []))
            summary.update(
                images=len(merged), complete=bool(planned) and planned <= ids, image_checks=image_checks(merged)
            )
            atomic_write_text(output / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
        fcntl.flock(lock, fcntl.LOCK_UN)
    return merged


def image_checks(manifest: pd.DataFrame) -> dict:
    """Counts over a (merged) manifest: images regenerated once because they were non-finite or
    constant, images still bad after that retry, and images that repeat another image's prompt
    (with one fixed seed these are the same picture: e.g. the frontal images of one study) or
    bytes."""
    retry = manifest["retry"].astype(str) if len(manifest) else pd.Series([], dtype=str)
    bad = manifest["bad"].astype(str) if len(manifest) else pd.Series([], dtype=str)
    prompt_repeats = int(len(manifest) - manifest["prompt"].nunique()) if len(manifest) else 0
    same_study = (
        int(len(manifest) - len(manifest.drop_duplicates(["subject_id", "study_id", "prompt"]))) if len(manifest) else 0
    )
    return {
        "regenerated": {"nonfinite": int((retry == "nonfinite").sum()), "constant": int((retry == "constant").sum())},
        "bad_after_retry": {"nonfinite": int((bad == "nonfinite").sum()), "constant": int((bad == "constant").sum())},
        "retry_rule": (
            "a non-finite or constant image is regenerated once with seed + 1 (manifest: image_seed, retry, bad)"
        ),
        "duplicate_prompt_images": prompt_repeats,
        "duplicate_prompt_images_same_study": same_study,
        "byte_identical_images": int(len(manifest) - manifest["sha256"].nunique()) if len(manifest) else 0,
    }


def place_reports(real: MimicLayout, synth: MimicLayout, merged: pd.DataFrame, mode: str) -> None:
    source, target = real.reports / "files", synth.reports / "files"
    if mode == "none":
        return
    if mode == "symlink":
        if target.is_symlink() and Path(os.readlink(target)) == source.resolve():
            return
        if target.exists() and not target.is_symlink():
            raise ConfigError(f"{target} exists and is not a link; use --reports copy or remove it")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".files.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(source.resolve(), tmp, target_is_directory=True)
        os.replace(tmp, target)
        return
    if mode == "copy":
        if target.is_symlink():
            target.unlink()
        for subject, study in sorted(set(zip(merged["subject_id"].astype(int), merged["study_id"].astype(int)))):
            src, dst = real.report_path(subject, study), synth.report_path(subject, study)
            if src.is_file() and not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst.with_name(dst.name + ".tmp"))
                os.replace(dst.with_name(dst.name + ".tmp"), dst)
        return
    raise ConfigError(f"--reports must be symlink, copy or none, got {mode!r}")


# ----------------------------------------------------------------------------------- driver
def plan(cfg: GenerationConfig, tokenizer) -> pd.DataFrame:
    """Every image of the run (all shards): ids, prompt, truncation, seed; sorted by ids."""
    pairs = pair_set(
        cfg.data_root
    )  # the pretraining pair set; prompt = IMPRESSION, or IMPRESSION + FINDINGS without one
    if cfg.splits:
        pairs = pairs[pairs["split"].isin(cfg.splits)]
    if cfg.limit is not None:
        pairs = pairs.iloc[: int(cfg.limit)]
    pairs = pairs.reset_index(drop=True)
    prompts, truncated, counts = truncate_prompts(tokenizer, pairs["prompt"].tolist())
    return pairs.assign(
        prompt=prompts,
        prompt_truncated=truncated,
        prompt_tokens=counts,
        seed=[image_seed(cfg.seed, cfg.seed_mode, d) for d in pairs["dicom_id"]],
    )


def generate(cfg: GenerationConfig, log=print) -> dict:
    """Run (or resume) one shard; returns a summary dict. See the module docstring."""

    if cfg.preset not in PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {cfg.preset!r}")
    if cfg.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    settings = cfg.resolved()
    if settings["height"] % 8 or settings["width"] % 8:
        raise ConfigError("--height and --width must be multiples of 8")
    image_seed(cfg.seed, cfg.seed_mode, "")  # validates the mode
    index, count = effective_shard(cfg.shard)
    device, dtype_name, torch_dtype = resolve_device_dtype(cfg.device, cfg.dtype)
    output, data_root, model = Path(cfg.output), Path(cfg.data_root), Path(cfg.model)
    MimicLayout(data_root).check()
    if output.resolve() == data_root.resolve():
        raise ConfigError("--output must differ from --data-root (the synthetic set is a separate data root)")

    start = time.perf_counter()
    pipe = load_pipeline(model, torch_dtype, device, settings["scheduler"])
    fingerprint = model_fingerprint(model)
    generator = cfg.generator_name or model.resolve().name
    scheduler_name = type(pipe.scheduler).__name__
    everything = plan(cfg, pipe.tokenizer)
    mine = shard_rows(everything, index, count, cfg.batch_size)
    n_truncated = int(everything["prompt_truncated"].sum())
    pairs_id = pair_set_summary(everything)
    n_fallback = int((everything["prompt_section"] != "impression").sum())
    log(
        f"[synthesis] {describe(pairs_id)}"
        + (" (--limit/--splits: a part of the pretraining pair set)" if cfg.limit is not None or cfg.splits else "")
        + f"; {n_fallback} prompts are IMPRESSION + FINDINGS (impression under 3 tokens)"
    )
    log(
        f"[synthesis] {len(everything)} frontal image/report pairs planned; {n_truncated} prompts truncated to "
        f"{pipe.tokenizer.model_max_length} tokens; shard {index}/{count}: {len(mine)} images; "
        f"{generator} ({scheduler_name}, {settings['steps']} steps, guidance {settings['guidance']}, "
        f"{settings['height']}x{settings['width']}, {dtype_name} on {device})"
    )

    layout = MimicLayout(output)
    output.mkdir(parents=True, exist_ok=True)
    previous = existing_rows(output)
    fixed = {
        "generator": generator,
        "generator_fingerprint": fingerprint,
        "preset": cfg.preset,
        "scheduler": scheduler_name,
        "steps": int(settings["steps"]),
        "guidance": float(settings["guidance"]),
        "height": int(settings["height"]),
        "width": int(settings["width"]),
        "dtype": dtype_name,
    }
    todo, kept, repaired = [], [], 0
    for rec in mine.to_dict("records"):
        rel = layout.image_path(rec["subject_id"], rec["study_id"], rec["dicom_id"]).relative_to(output).as_posix()
        row = {
            "batch": int(rec["batch"]),
            **{
                k: rec[k]
                for k in (
                    "dicom_id",
                    "subject_id",
                    "study_id",
                    "split",
                    "ViewPosition",
                    "prompt",
                    "prompt_truncated",
                    "prompt_tokens",
                )
            },
            **fixed,
            "seed": int(rec["seed"]),
            "path": rel,
        }
        old = previous.get(str(rec["dicom_id"]))
        if old is not None:
            diffs = _same_settings(old, row)
            if diffs and not cfg.overwrite:
                raise ConfigError(
                    f"{output} already holds {rec['dicom_id']} generated with other settings ({'; '.join(diffs[:4])}). "
                    "Use another --output, or --overwrite to regenerate such images."
                )
            if not diffs and not cfg.overwrite and image_ok(output / rel, str(old["sha256"])):
                kept.append(
                    {
                        **row,
                        "dtype": old.get("dtype", dtype_name),
                        "sha256": old["sha256"],
                        **{k: old.get(k, v) for k, v in LATER_COLUMNS.items()},
                    }
                )
                continue
            repaired += 1
        todo.append(row)
    log(
        f"[synthesis] shard {index}/{count}: {len(kept)} already done (verified), {len(todo)} to generate"
        + (f" ({repaired} missing, corrupt or outdated)" if repaired else "")
    )

    manifest_path = shard_manifest_path(output, index, count)
    write_manifest(manifest_path, pd.DataFrame(kept, columns=list(MANIFEST_COLUMNS)))
    appender = ManifestAppender(manifest_path)
    from benchmark.progress import progress_bar

    # a bar on a terminal; in a batch log one line per generated batch
    bar = progress_bar(len(todo), f"[synthesis] shard {index}/{count}", "img", enabled=cfg.progress)
    gen_start, done = time.perf_counter(), 0
    try:
        needed = {r["dicom_id"]: r for r in todo}
        for _, group in mine[mine["batch"].isin({r["batch"] for r in todo})].groupby("batch", sort=True):
            # the whole global batch runs (same composition as in any other run); only missing images are written
            images, checks = synthesize_with_retry(
                pipe,
                group["prompt"].tolist(),
                [int(v) for v in group["seed"]],
                height=fixed["height"],
                width=fixed["width"],
                steps=fixed["steps"],
                guidance=fixed["guidance"],
            )
            batch = [
                (needed[d], grey, check) for d, grey, check in zip(group["dicom_id"], images, checks) if d in needed
            ]
            for row, grey, check in batch:
                data = jpeg_bytes(grey)
                write_image(output / row["path"], data)
                appender.add({**row, **check, "sha256": hashlib.sha256(data).hexdigest()})
                done += 1
                if check["retry"]:
                    log(
                        f"[synthesis] {row['dicom_id']}: {check['retry']} image with seed {row['seed']}, "
                        f"regenerated with seed {check['image_seed']}"
                        + (f": still {check['bad']} (kept, counted)" if check["bad"] else "")
                    )
            bar.update(len(batch))
    finally:
        bar.close()
        appender.close()
    gen_seconds = time.perf_counter() - gen_start
    rows = read_manifest_file(manifest_path).drop_duplicates("dicom_id", keep="last")
    rows = rows.astype({"subject_id": int, "study_id": int}).sort_values(["subject_id", "study_id", "dicom_id"])
    write_manifest(manifest_path, rows)
    summary = {
        "recipe": "recipes.synthesis.generate",
        "data_root": str(data_root.resolve()),
        "model": str(model.resolve()),
        **fixed,
        "seed": cfg.seed,
        "seed_mode": cfg.seed_mode,
        "batch_size": cfg.batch_size,
        "jpeg_quality": JPEG_QUALITY,
        "image_mode": "L",
        "planned": len(everything),
        "pair_set": pairs_id,
        "prompts_impression_findings": n_fallback,
        "prompts_truncated": n_truncated,
        "token_limit": int(pipe.tokenizer.model_max_length),
        "limit": cfg.limit,
        "splits": list(cfg.splits) if cfg.splits else None,
        "last_shard": {
            "index": index,
            "count": count,
            "generated": done,
            "kept": len(kept),
            "seconds": round(gen_seconds, 3),
            "images_per_s": round(done / gen_seconds, 4) if done and gen_seconds else None,
            "batch_size": cfg.batch_size,
            "device": str(device),
        },
        "packages": package_versions(),
        "git": git_state(),
        "command": " ".join(sys.argv),
        "_planned_ids": everything["dicom_id"].astype(str).tolist(),
    }
    merged = finalize(output, data_root, reports=cfg.reports, summary=summary)
    checks = image_checks(merged)
    log(
        f"[synthesis] image checks over {len(merged)} images: regenerated {checks['regenerated']}, "
        f"still bad after the retry {checks['bad_after_retry']}; "
        f"{checks['duplicate_prompt_images']} images repeat another image's prompt "
        f"({checks['duplicate_prompt_images_same_study']} within one study), "
        f"{checks['byte_identical_images']} byte-identical"
    )
    log(
        f"[synthesis] shard {index}/{count} done: {done} generated in {gen_seconds:.1f} s"
        + (f" ({done / gen_seconds:.2f} images/s)" if done else "")
        + f"; {len(merged)}/{len(everything)} images in {output} (total {time.perf_counter() - start:.1f} s)"
    )
    return {**summary, "shard": f"{index}/{count}", "generated": done, "kept": len(kept), "merged": len(merged)}


def config_from_args(args) -> GenerationConfig:
    return GenerationConfig(
        data_root=Path(args.data_root),
        model=Path(args.model),
        output=Path(args.output),
        preset=args.preset,
        steps=args.steps,
        guidance=args.guidance,
        height=args.height,
        width=args.width,
        scheduler=args.scheduler,
        seed=args.seed,
        seed_mode=args.seed_mode,
        batch_size=args.batch_size,
        dtype=args.dtype,
        device=args.device,
        shard=args.shard,
        limit=args.limit,
        splits=tuple(s for s in args.splits.split(",") if s) if args.splits else None,
        reports=args.reports,
        generator_name=args.generator_name,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )


__all__ = [
    "GenerationConfig",
    "PRESETS",
    "SCHEDULERS",
    "generate",
    "finalize",
    "read_manifest",
    "truncate_prompts",
    "image_seed",
    "effective_shard",
    "load_pipeline",
    "synthesize",
    "synthesize_with_retry",
    "image_checks",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "IMAGEFOLDER_METADATA",
    "write_imagefolder_metadata",
]
