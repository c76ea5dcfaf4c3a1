"""A TINY random Stable Diffusion pipeline, written to a directory, for tests and benchmarks.

Nothing is downloaded: the CLIP tokenizer is a byte-level BPE built from fixture text
(``vocab.json`` + ``merges.txt`` written here, with ``<|startoftext|>`` / ``<|endoftext|>``),
and the UNet, VAE and text encoder are randomly initialised with a fixed torch seed.
``architecture="sd1"`` / ``"sd2"`` build random models with the real SD 1.x / SD 2.x shapes
(for throughput measurements only; their images are noise).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from benchmark.progress import library_bars_off

FIXTURE_TEXT = (
    "no acute cardiopulmonary process . right basilar atelectasis . small left pleural effusion . "
    "moderate cardiomegaly with pulmonary edema . possible right lower lobe pneumonia . "
    "no pneumothorax . stable appearance of the chest . lungs are clear . bilateral opacities , "
    "consolidation , mild interstitial edema , heart size is normal , the mediastinum is unremarkable"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode map (the standard construction)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_clip_tokenizer(directory: str | Path, text: str = FIXTURE_TEXT, merges: int = 200) -> Path:
    """A CLIP byte-level BPE tokenizer learnt (greedy pair merges) from ``text``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    byte_chars = list(_bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    words = Counter(re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", text.lower()))
    splits = {w: [*w[:-1], w[-1] + "</w>"] for w in words}
    merge_list: list[tuple[str, str]] = []
    for _ in range(merges):
        pairs = Counter()
        for word, count in words.items():
            symbols = splits[word]
            for a, b in zip(symbols, symbols[1:]):
                pairs[a, b] += count
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda item: (item[1], item[0]))
        merge_list.append((a, b))
        for word in words:
            symbols, merged, k = splits[word], [], 0
            while k < len(symbols):
                if k + 1 < len(symbols) and symbols[k] == a and symbols[k + 1] == b:
                    merged.append(a + b)
                    k += 2
                else:
                    merged.append(symbols[k])
                    k += 1
            splits[word] = merged
    vocab += ["".join(pair) for pair in merge_list] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = list(dict.fromkeys(vocab))
    (directory / "vocab.json").write_text(
        json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8"
    )
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merge_list), encoding="utf-8"
    )
    return directory


def build_pipeline(
    architecture: str = "tiny", seed: int = 0, tokenizer_dir: str | Path | None = None, scheduler: str = "ddim"
):
    """A random ``StableDiffusionPipeline`` (no safety checker)."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    if tokenizer_dir is None:
        tokenizer_dir = write_clip_tokenizer(tempfile.mkdtemp(prefix="clip-tok-"))
    tokenizer = CLIPTokenizer(
        str(Path(tokenizer_dir) / "vocab.json"), str(Path(tokenizer_dir) / "merges.txt"), model_max_length=77
    )
    vocab_size = len(tokenizer)
    if architecture == "tiny":
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(8, 16),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=16,
            attention_head_dim=2,
            norm_num_groups=4,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=4,
            sample_size=32,
        )
        text = CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            projection_dim=16,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    elif architecture in ("sd1", "sd2"):
        sd2 = architecture == "sd2"
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=1024 if sd2 else 768,
            attention_head_dim=(5, 10, 20, 20) if sd2 else 8,
            use_linear_projection=sd2,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            sample_size=512,
        )
        text = CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=1024 if sd2 else 768,
            intermediate_size=4096 if sd2 else 3072,
            num_hidden_layers=23 if sd2 else 12,
            num_attention_heads=16 if sd2 else 12,
            hidden_act="gelu" if sd2 else "quick_gelu",
            max_position_embeddings=77,
            projection_dim=512 if sd2 else 768,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    else:
        raise ValueError(f"unknown architecture {architecture!r}: tiny, sd1 or sd2")
    text_encoder = CLIPTextModel(text).eval()
    common = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    sched = (
        DDIMScheduler(clip_sample=False, set_alpha_to_one=False, steps_offset=1, **common)
        if scheduler == "ddim"
        else PNDMScheduler(skip_prk_steps=True, steps_offset=1, **common)
    )
    return StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def write_tiny_pipeline(
    directory: str | Path, architecture: str = "tiny", seed: int = 0, scheduler: str = "ddim"
) -> Path:
    """Build :func:`build_pipeline` and ``save_pretrained`` it to ``directory``."""
    directory = Path(directory)
    tok = write_clip_tokenizer(directory / "_fixture_tokenizer")
    pipeline = build_pipeline(architecture, seed, tok, scheduler)
    with library_bars_off():  # no "Writing model shards" bar in the caller's output
        pipeline.save_pretrained(directory, safe_serialization=True)
    return directory
