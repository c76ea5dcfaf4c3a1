"""Benchmark: pretraining steps per second (images/s) per method, device, batch and precision.

    .venv/bin/python bench/pretraining_throughput.py --device cpu --batch 8 --steps 5 --methods convirt,gloria,mgca
    .venv/bin/python bench/pretraining_throughput.py --device cuda --batch 72 --precision bf16 --steps 30
    PYTHONPATH=/tmp/old-tree .venv/bin/python bench/pretraining_throughput.py ...   # the same on another checkout

Times the optimizer step of the trainer (forward of the preset's method, backward, gradient
clipping if the preset clips, optimizer step, and the loss log: read every ``--log-every``
steps where the code has recipes.pretraining.step_log, else every loss term every step, as the
former trainer did) on one fixed, synthetic batch already on the device: data loading is NOT
included (see bench/pretraining_image_cache.py). Models are built from configs with random
weights, nothing is downloaded:

- ``--size real`` (the default on CUDA): ResNet-50 at the 224 crop (upsampled to the preset's
  299), a BERT-base-sized text tower (hidden 768, 12 heads, FFN 3072, vocabulary 28,996 as
  Bio_ClinicalBERT) of 12 layers of which each preset keeps its own (convirt / mgca: the first
  6; gloria: all 12), the preset's heads and token counts;
- ``--size small`` (the default on the CPU): ResNet-18 at a 64 crop without upsampling, a
  2-layer 128-wide BERT, the preset's heads and token counts.

Captions are random token ids of random lengths (caption presets 30 to max_words tokens,
sentence presets 6 to 24). Prints one line per method and the checkout measured. Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import recipes
from recipes.pretraining.methods import StepContext, build_method
from recipes.pretraining.train import TrainConfig, _autocast_factory

try:  # present since the host-sync-free step; absent on an older checkout
    from recipes.pretraining.acceleration import prepare
    from recipes.pretraining.step_log import StepLog, default_log_every
except ImportError:  # pragma: no cover - older checkout
    prepare = StepLog = default_log_every = None

SIZES = {
    "real": dict(
        arch="resnet50",
        crop=224,
        bert=dict(
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=28996
        ),
    ),
    "small": dict(
        arch="resnet18",
        crop=64,
        upsample=0,
        bert=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256, vocab_size=1000),
    ),
}


def write_bert(folder: Path, max_positions: int, **config) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(max_position_embeddings=max_positions, **config), add_pooling_layer=False).save_pretrained(
        str(folder)
    )
    return folder


def synthetic_batch(B: int, crop: int, max_words: int, sentence: bool, vocab: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    lo, hi = (6, 24) if sentence else (30, max_words)
    lengths = torch.randint(min(lo, max_words), min(hi, max_words) + 1, (B,), generator=g)  # [CLS] + words + [SEP]
    T = max_words
    pos = torch.arange(T).unsqueeze(0)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    ids[:, 0], ids[pos.expand(B, T) == (lengths - 1).unsqueeze(1)] = 2, 3
    ids[pos >= lengths.unsqueeze(1)] = 0
    batch = {
        "image": torch.rand(B, 1, crop, crop, generator=g) * 2 - 1,
        "input_ids": ids,
        "attention_mask": (pos < lengths.unsqueeze(1)).long(),
        "token_type_ids": torch.zeros(B, T, dtype=torch.long),
        "word_slots": torch.where(pos < lengths.unsqueeze(1), pos, torch.full_like(pos, T)),
        "n_slots": lengths,
        "n_words": lengths - 2,
        "index": torch.arange(B),
    }
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["host_n_words"] = (lengths - 2).tolist()
    return batch


def measure(preset: str, a, device: torch.device, bert_dir: Path) -> dict:
    size = SIZES[a.size]
    cfg = TrainConfig(
        method=preset, data_root="-", text_encoder=str(bert_dir), output="-", batch_size=a.batch
    ).resolved()
    upsample = size.get("upsample", cfg.upsample)
    method = build_method(
        cfg.preset().method,
        arch=size["arch"],
        text_encoder=str(bert_dir),
        image_init="random",
        seed=0,
        upsample=upsample,
        local_layer=cfg.local_layer,
        **cfg.hparams,
    ).to(device)
    applied = {"channels_last": "n/a", "compile": "n/a"}
    if prepare is not None:
        applied = prepare(method, device, channels_last=a.channels_last, compile_backend=a.compile)
    hp = cfg.hparams
    params = [p for p in method.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
    optimizer = opt_cls(
        params,
        lr=cfg.lr,
        betas=tuple(hp["betas"]),
        weight_decay=cfg.weight_decay,
        **({"fused": True} if device.type == "cuda" else {}),
    )
    batch = synthetic_batch(
        a.batch, size["crop"], cfg.max_words, hp["text_input"] == "sentence", size["bert"]["vocab_size"], device
    )
    autocast = _autocast_factory(device, a.precision)
    log_every = a.log_every or (default_log_every(device) if default_log_every else 1)
    steplog = StepLog(log_every, a.batch) if StepLog is not None else None
    sink = []

    def step(i: int) -> None:
        losses = method(batch, StepContext(step=i, seed=0, autocast=autocast))
        losses["loss"].backward()
        if steplog is not None:
            steplog.add(losses, 1)
        else:  # the former trainer: every term read every micro-step
            sink.append({k: float(v.detach()) for k, v in losses.items()})
        method.after_backward(1)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if steplog is not None:
            steplog.end_step(step=i)
            if steplog.due():
                sink.extend(steplog.flush())

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(a.warmup):
        step(i)
    if steplog is not None:
        steplog.flush()
    sync()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(a.warmup + i)
    if steplog is not None:
        sink.extend(steplog.flush())
    sync()
    dt = time.perf_counter() - t0
    bert_layers = next(m for m in method.modules() if m.__class__.__name__ == "BertModel").config.num_hidden_layers
    return {
        "images_s": a.batch * a.steps / dt,
        "step_ms": 1e3 * dt / a.steps,
        "applied": applied,
        "log": f"losses read every {log_every} step(s)"
        if steplog
        else "every loss term read every step (former trainer)",
        "bert_layers": bert_layers,
        "max_words": cfg.max_words,
        "upsample": upsample,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument(
        "--batch", type=int, default=None, help="pairs per GPU (process) and step (default: 72 on CUDA, 8 on the CPU)"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "bf16", "fp32"),
        help="auto: bf16 autocast on CUDA, fp32 on the CPU",
    )
    p.add_argument(
        "--methods", default="convirt,gloria,mgca", help="comma-separated presets (recipes.pretraining.presets)"
    )
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 30 on CUDA, 5 on the CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 5 on CUDA, 1 on the CPU)")
    p.add_argument(
        "--size", choices=tuple(SIZES), default=None, help="model sizes (default: real on CUDA, small on the CPU)"
    )
    p.add_argument("--log-every", type=int, default=None, help="read the losses every N steps (default: the trainer's)")
    p.add_argument(
        "--channels-last", default="auto", choices=("auto", "on", "off"), help="as the trainer's --channels-last"
    )
    p.add_argument(
        "--compile", nargs="?", const="inductor", default=None, metavar="BACKEND", help="as the trainer's --compile"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    a = p.parse_args()
    device = torch.device(
        "cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device)
    )
    cuda = device.type == "cuda"
    a.batch = a.batch or (72 if cuda else 8)
    a.steps = a.steps or (30 if cuda else 5)
    a.warmup = a.warmup if a.warmup is not None else (5 if cuda else 1)
    a.size = a.size or ("real" if cuda else "small")
    if a.threads:
        torch.set_num_threads(a.threads)
    precision = a.precision if a.precision != "auto" else ("bf16" if cuda else "fp32")
    print(
        f"code: {Path(recipes.__file__).resolve().parents[1]}; torch {torch.__version__}; device {device}"
        f"{' (' + torch.cuda.get_device_name(device) + ')' if cuda else ''}; size {a.size}; "
        f"threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory(prefix="medvlp-throughput-") as tmp:
        bert_dir = write_bert(Path(tmp) / "bert", 512, **SIZES[a.size]["bert"])
        for preset in [m.strip() for m in a.methods.split(",") if m.strip()]:
            r = measure(preset, a, device, bert_dir)
            print(
                f"{preset:16s} {device.type:4s} batch {a.batch:3d} {precision:4s}: {r['images_s']:8.1f} images/s "
                f"({r['step_ms']:7.1f} ms/step; {SIZES[a.size]['arch']} upsample {r['upsample'] or 'off'}, "
                f"BERT {r['bert_layers']} layers, {r['max_words']} tokens; {r['log']}; "
                f"channels_last {({True: 'on', False: 'off'}).get(r['applied']['channels_last'], 'n/a')}, "
                f"compile {r['applied']['compile'] or 'off'})",
                flush=True,
            )


if __name__ == "__main__":
    main()
