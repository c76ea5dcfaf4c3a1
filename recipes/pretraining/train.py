"""Pretraining loop and CLI: ``python -m recipes.pretraining --method mgca ...``.

One process, or one per GPU under ``torchrun`` (DDP: NCCL on CUDA, gloo on CPU). bf16
autocast on CUDA; gradient accumulation; deterministic seeding (model init, pair order,
crops and dropout are functions of --seed, the step and the rank); a resumable state
(``resume.pt``, written atomically every --save-every optimizer steps and at every epoch
end) from which a killed run continues at the saved step; a harness-loadable export
(``<method>-<source>-<arch>.ckpt``: the best validation epoch, or the last state when no
validation epoch finished). Speed: an optional image cache (``--image-cache``,
:mod:`recipes.pretraining.image_cache`), loader workers that persist across epochs, losses read
from the device every ``--log-every`` steps (:mod:`recipes.pretraining.step_log`), channels-last
and ``torch.compile`` (:mod:`recipes.pretraining.acceleration`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.progress import format_duration, is_terminal
from recipes.mimic.pair_set import describe, pair_set_summary
from recipes.pretraining.acceleration import CHANNELS_LAST, prepare
from recipes.pretraining.data import (
    Captioner,
    ImageSpec,
    PairDataset,
    SourceSpec,
    StepBatches,
    TextInput,
    collate,
    load_pretraining_pairs,
    synthesis_settings,
)
from recipes.pretraining.distributed import Dist, setup, teardown
from recipes.pretraining.image_cache import ImageCache, resolve_cache_dir
from recipes.pretraining.methods import IMAGE_PREFIX, StepContext, build_method
from recipes.pretraining.presets import PRESET_NAMES, TEXT_INPUTS, get_preset
from recipes.pretraining.step_log import StepLog, default_log_every

RESUME_FILE = "resume.pt"
LOG_FILE = "log.jsonl"
FORMAT_VERSION = 1


@dataclass
class TrainConfig:
    method: str = "mgca"  # a preset name (recipes.pretraining.presets)
    data_root: str = ""
    text_encoder: str = ""
    tokenizer: str | None = None
    output: str = "runs/pretrain"
    image_source: str = "real"
    synthetic_root: str | None = None
    synthetic_ratio: float = 1.0
    generator: str | None = None
    arch: str = "resnet50"
    image_init: str | None = None  # None: the preset's
    resize: int = 256
    crop: int = 224
    upsample: int | None = None  # None: the preset's
    local_layer: str = "layer3"
    max_words: int | None = None  # None: the preset's
    batch_size: int | None = None  # per process
    accumulate: int = 1
    virtual_ranks: int = 1
    epochs: int | None = None
    max_steps: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None
    patience: int | None = None
    seed: int = 42
    workers: int = 4
    device: str = "auto"
    precision: str = "auto"
    save_every: int = 1000
    validate: bool = True
    resume: bool = True
    progress: bool = True
    limit: int | None = None
    image_cache: str | None = (
        None  # None: off; "auto": recipes.pretraining.image_cache.default_cache_dir(); or a folder
    )
    log_every: int | None = None  # None: 1 on the CPU, 50 on CUDA (recipes.pretraining.step_log)
    channels_last: str = "auto"  # auto | on | off (recipes.pretraining.acceleration)
    compile: str | None = None  # a torch.compile backend (e.g. inductor), None = eager
    hparams: dict[str, Any] = field(default_factory=dict)  # method hyperparameter overrides

    def resolved(self) -> "TrainConfig":
        preset = get_preset(self.method)
        d = preset.hparams
        out = TrainConfig(**{f.name: getattr(self, f.name) for f in fields(self)})
        for name in ("image_init", "upsample", "max_words"):
            if getattr(out, name) is None:
                setattr(out, name, getattr(preset, name))
        for name in ("batch_size", "epochs", "lr", "weight_decay", "grad_clip", "patience"):
            if getattr(out, name) is None:
                setattr(out, name, d[name])
        out.hparams = {
            k: v
            for k, v in d.items()
            if k not in ("batch_size", "epochs", "lr", "weight_decay", "grad_clip", "patience")
        }
        out.hparams.update(self.hparams)
        if out.hparams["text_input"] not in TEXT_INPUTS:
            raise ConfigError(
                f"--hp text_input must be one of {', '.join(TEXT_INPUTS)}, got {out.hparams['text_input']!r}"
            )
        out.tokenizer = self.tokenizer or self.text_encoder
        if out.accumulate < 1 or out.virtual_ranks < 1 or out.batch_size % out.virtual_ranks:
            raise ConfigError(
                "--accumulate and --virtual-ranks must be >= 1 and --batch-size divisible by --virtual-ranks"
            )
        if out.log_every is not None and out.log_every < 1:
            raise ConfigError(f"--log-every must be >= 1, got {out.log_every}")
        if out.channels_last not in CHANNELS_LAST:
            raise ConfigError(f"--channels-last must be one of {', '.join(CHANNELS_LAST)}, got {out.channels_last!r}")
        return out

    def source(self) -> SourceSpec:
        return SourceSpec(
            self.image_source,
            self.synthetic_root,
            self.synthetic_ratio if self.image_source == "mixed" else 1.0,
            self.generator,
            self.seed,
        )

    def preset(self):
        return get_preset(self.method)

    def export_name(self) -> str:
        return f"{self.method}-{self.source().label()}-{self.arch}.ckpt"


# ------------------------------------------------------------------------------ schedule
def cosine_warmup_lr(step: int, total: int, max_lr: float, min_lr: float, warmup_frac: float) -> float:
    """Linear warm-up from min_lr over ``warmup_frac`` of the steps, then cosine to min_lr
    (MGCA's CosineAnnealingWarmupRestarts with one cycle)."""
    warm = int(total * warmup_frac)
    if warm > 0 and step < warm:
        return min_lr + (max_lr - min_lr) * step / warm
    span = max(1, total - warm)
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * min(1.0, (step - warm) / span))) / 2


def epoch_cosine_lr(epoch: int, t_max: int, max_lr: float, delay_epochs: int, min_lr: float = 0.0) -> float:
    """The original ConVIRT code's schedule: ``CosineAnnealingLR(T_max=len(train_loader),
    eta_min=0)`` stepped once per EPOCH after each epoch >= ``delay_epochs`` (its "warm-up":
    constant lr for the first epochs). So epoch ``e`` runs at the closed form with
    ``max(0, e - delay_epochs)`` scheduler steps over a period of ``t_max`` = optimizer steps per
    epoch: the lr barely moves on a large data set."""
    k = max(0, epoch - delay_epochs)
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * k / max(1, t_max))) / 2


# ------------------------------------------------------------------------------ files
def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def export_checkpoint(
    method,
    cfg: TrainConfig,
    path: Path,
    *,
    epoch: int,
    step: int,
    val_loss: float | None,
    n_pairs: dict[str, int],
    pairs_id: dict,
    tokenizer_dir: str,
) -> None:
    """A Lightning-like checkpoint the harness reads with ``weights_only=True``."""
    sd = {
        k: v.detach().cpu().contiguous().clone() for k, v in method.state_dict().items()
    }  # NCHW even under channels_last
    bert = (
        getattr(method, "text_encoder_q", None) or getattr(method, "text_encoder", None) or method.gloria.text_encoder
    )
    record = {
        "format_version": FORMAT_VERSION,
        "method": cfg.preset().method,
        "preset": {**cfg.preset().record(), "text_input": cfg.hparams["text_input"]},
        "image_prefix": IMAGE_PREFIX[cfg.preset().method],
        "image_init": cfg.image_init,
        "arch": cfg.arch,
        "image_source": cfg.image_source,
        "synthetic_ratio": cfg.synthetic_ratio
        if cfg.image_source == "mixed"
        else (1.0 if cfg.image_source == "synthetic" else 0.0),
        "generator": cfg.generator,
        "synthetic_root": cfg.synthetic_root,
        "synthesis": synthesis_settings(cfg.synthetic_root) if cfg.image_source != "real" else None,
        "data_root": cfg.data_root,
        "pairs": n_pairs,
        "pair_set": pairs_id,  # counts and sha256 of the pairs (independent of the image source)
        "image_input": {
            "resize": cfg.resize,
            "crop": cfg.crop,
            "mean": 0.5,
            "std": 0.5,
            "channels": 3,
            "resnet_upsample": cfg.upsample,
        },
        "text_encoder_dir": str(cfg.text_encoder),
        "text_encoder_config": _plain(bert.model.config.to_dict()),
        "tokenizer_dir": tokenizer_dir,
        "max_words": cfg.max_words,
        "heads": _plain(method.record()),
        "val_loss": val_loss,
        "config": _plain(asdict(cfg)),
    }
    obj = {
        "state_dict": sd,
        "epoch": epoch,
        "global_step": step,
        "hyper_parameters": _plain({**asdict(cfg), **cfg.hparams}),
        "medvlp": _plain(record),
    }
    atomic_save(obj, path)


# ------------------------------------------------------------------------------ training
class Hooks:
    """Test/extension hooks: ``on_step(step, logs)`` for every optimizer step, in order, once its
    losses are read from the device (every ``--log-every`` steps; right after a save)."""

    def on_step(self, step: int, logs: dict[str, float]) -> None:
        pass


def _autocast_factory(device: torch.device, precision: str) -> Callable:
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ConfigError(f"--precision must be auto, bf16 or fp32, got {precision!r}")
    return contextlib.nullcontext


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _loader(dataset, sampler, workers: int):
    """Workers persist across epochs: ``sampler`` (a :class:`StepBatches` whose ``epoch`` and
    ``start`` the loop sets before each pass) is re-read at every ``iter()``, the dataset is not
    shipped to new processes again, so an epoch does not begin with a pause."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(cfg: TrainConfig, hooks: Hooks | None = None, dist_info: Dist | None = None) -> Path:
    """Run (or resume) a pretraining run; returns the exported checkpoint path."""
    cfg = cfg.resolved()
    hooks = hooks or Hooks()
    d = dist_info or setup(cfg.device)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    from recipes.pretraining.encoders import load_tokenizer

    tokenizer = load_tokenizer(cfg.tokenizer)
    frame = load_pretraining_pairs(cfg.data_root, cfg.source(), limit=cfg.limit)
    train_frame = frame[frame.subset == "train"].reset_index(drop=True)
    valid_frame = frame[frame.subset == "valid"].reset_index(drop=True)
    n_pairs = {
        "train": len(train_frame),
        "valid": len(valid_frame),
        "synthetic_images": int((frame.image_kind == "synthetic").sum()),
    }
    pairs_id = pair_set_summary(frame)
    if d.main:
        print(
            f"{cfg.method} ({cfg.source().label()} images): {describe(pairs_id)}; "
            f"{n_pairs['synthetic_images']} synthetic images",
            flush=True,
        )
    captioner = Captioner(tokenizer, cfg.max_words)
    text = TextInput(cfg.hparams["text_input"], int(cfg.hparams.get("sentence_stop_words", 0)))
    image = ImageSpec(cfg.resize, cfg.crop)
    cached_train = cached_valid = None
    cache_dir = resolve_cache_dir(cfg.image_cache)
    if cache_dir is not None:
        cached = ImageCache(cache_dir, cfg.resize).prepare(
            list(train_frame.image_path) + list(valid_frame.image_path),
            workers=cfg.workers,
            progress=cfg.progress,
            rank=d.rank,
            world=d.world_size,
            barrier=d.barrier,
            log=print if d.main else None,
        )
        cached_train, cached_valid = (
            cached.take(range(len(train_frame))),
            cached.take(range(len(train_frame), len(cached))),
        )
    train_set = PairDataset(train_frame, captioner, image, train=True, text=text, cached=cached_train)
    valid_set = PairDataset(valid_frame, captioner, image, train=False, text=text, cached=cached_valid)

    B, W, A = cfg.batch_size, d.world_size, cfg.accumulate
    micro_per_epoch = StepBatches.steps_per_epoch(len(train_set), B, W)
    steps_per_epoch = micro_per_epoch // A
    if steps_per_epoch < 1:
        raise ConfigError(
            f"{len(train_set)} training pairs are fewer than one global batch "
            f"({B} per process x {W} processes x {A} accumulation); lower --batch-size"
        )
    total_steps = steps_per_epoch * cfg.epochs

    method = build_method(
        cfg.preset().method,
        arch=cfg.arch,
        text_encoder=cfg.text_encoder,
        image_init=cfg.image_init,
        seed=cfg.seed,
        upsample=cfg.upsample,
        local_layer=cfg.local_layer,
        **cfg.hparams,
    ).to(d.device)
    applied = prepare(method, d.device, channels_last=cfg.channels_last, compile_backend=cfg.compile)
    if d.main and (applied["channels_last"] or applied["compile"]):
        print(
            f"speed options: channels_last {'on' if applied['channels_last'] else 'off'}, "
            f"compile {applied['compile'] or 'off'}",
            flush=True,
        )
    hp = cfg.hparams
    if hp["scheduler"] not in ("cosine_warmup", "plateau", "epoch_cosine"):
        raise ConfigError(f"--hp scheduler must be cosine_warmup, plateau or epoch_cosine, got {hp['scheduler']!r}")
    params = [p for p in method.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
    extra = {"fused": True} if d.device.type == "cuda" else {}
    optimizer = opt_cls(params, lr=cfg.lr, betas=tuple(hp["betas"]), weight_decay=cfg.weight_decay, **extra)
    model = method
    if d.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[d.device.index] if d.device.type == "cuda" else None, find_unused_parameters=False
        )

    state = {
        "step": 0,
        "epoch": 0,
        "best_val": None,
        "bad_epochs": 0,
        "lr_scale": 1.0,
        "plateau_best": None,
        "plateau_bad": 0,
        "done": False,
    }
    resume_path = out / RESUME_FILE
    if cfg.resume and resume_path.is_file():
        saved = torch.load(resume_path, map_location="cpu", weights_only=True)
        method.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state.update(saved["state"])
        if d.main:
            print(f"resuming {out} from step {state['step']} (epoch {state['epoch']})", flush=True)
    if d.main:  # drop log lines written after the state we resume from
        log = [r for r in _read_log(out / LOG_FILE) if r.get("step", 0) <= state["step"]]
        (out / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in log))
        shutil.rmtree(out / "tokenizer", ignore_errors=True)
        tokenizer.save_pretrained(str(out / "tokenizer"))
    autocast = _autocast_factory(d.device, cfg.precision)
    export_path = out / cfg.export_name()

    def save_state() -> None:
        if d.main:
            atomic_save(
                {
                    "model": {k: v.detach().cpu() for k, v in method.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "state": dict(state),
                    "config": _plain(asdict(cfg)),
                },
                resume_path,
            )
        d.barrier()

    def log_line(rec: dict) -> None:
        if d.main:
            with open(out / LOG_FILE, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def set_lr(step: int) -> float:
        if hp["scheduler"] == "cosine_warmup":
            lr = cosine_warmup_lr(step, total_steps, cfg.lr, hp["min_lr"], hp["warmup"])
        elif hp["scheduler"] == "epoch_cosine":
            lr = epoch_cosine_lr(step // steps_per_epoch, steps_per_epoch, cfg.lr, hp["cosine_delay_epochs"])
        else:
            lr = cfg.lr * state["lr_scale"]
        for g in optimizer.param_groups:
            g["lr"] = lr
        return lr

    bar = None
    limit = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps
    if d.main and cfg.progress and is_terminal():  # a batch log gets the epoch lines only (say_epoch)
        from tqdm import tqdm

        bar = tqdm(
            total=limit,
            initial=min(state["step"], limit),
            desc=f"{cfg.method} pretraining",
            unit="step",
            dynamic_ncols=True,
        )

    log_every = cfg.log_every or default_log_every(d.device)
    steplog = StepLog(log_every, B * W * A, W, d.all_reduce_sum if d.enabled else None)
    sampler = StepBatches(len(train_set), B, world=W, rank=d.rank, seed=cfg.seed)
    train_loader = _loader(train_set, sampler, cfg.workers)
    loaders = {"train": train_loader}

    clock = {"start": time.perf_counter(), "first_step": state["step"]}
    epoch_losses: list[float] = []

    def say_epoch(val: float | None, best: bool) -> None:
        """One line per finished epoch (a batch log's progress; above the bar on a terminal)."""
        if not d.main:
            return
        elapsed = time.perf_counter() - clock["start"]
        steps = state["step"] - clock["first_step"]
        text = f"epoch {state['epoch']}/{cfg.epochs}: step {state['step']}/{limit}"
        if epoch_losses:
            text += f", train loss {sum(epoch_losses) / len(epoch_losses):.4f}"
        if val is not None:
            text += f", val loss {val:.4f}" + (" (best)" if best else "")
        text += f", {format_duration(elapsed)} elapsed"
        if steps > 0 and state["step"] < limit and not state["done"]:
            text += f", ETA {format_duration(elapsed / steps * (limit - state['step']))}"
        epoch_losses.clear()
        if bar is not None:
            bar.write(text)
        else:
            print(text, flush=True)

    def flush_logs(save: bool = False) -> None:
        """Write the pending steps' lines (one host sync), optionally save, then run the hooks."""
        done = steplog.flush()
        for rec, _ in done:
            log_line(rec)
            epoch_losses.append(rec["loss"])
        if bar is not None and done:
            rec = done[-1][0]
            bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{rec['lr']:.2e}", img_s=f"{rec['img_per_s']:.1f}")
        if save:
            save_state()
        for rec, logs in done:
            hooks.on_step(rec["step"], logs)

    stop = state["done"]
    while not stop and state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        done_in_epoch = state["step"] - epoch * steps_per_epoch
        sampler.epoch, sampler.start = epoch, done_in_epoch * A
        model.train()
        micro = 0
        steplog.restart_clock()
        optimizer.zero_grad(set_to_none=True)
        for batch in train_loader:
            if micro >= (steps_per_epoch - done_in_epoch) * A:
                break
            batch = _to(batch, d.device)
            ctx = StepContext(
                chunks=cfg.virtual_ranks,
                rank=d.rank,
                world_size=W,
                seed=cfg.seed,
                step=state["step"] * A + micro % A,
                epoch=epoch,
                all_reduce=d.all_reduce_sum if d.enabled else None,
                autocast=autocast,
            )
            last = (micro + 1) % A == 0
            sync = contextlib.nullcontext() if (last or not d.enabled) else model.no_sync()
            with sync:
                losses = model(batch, ctx)
                (losses["loss"] / A).backward()
            steplog.add(losses, A)  # stays on the device: no host sync here
            micro += 1
            if not last:
                continue
            method.after_backward(epoch)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            lr = set_lr(state["step"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            steplog.end_step(step=state["step"], epoch=epoch, lr=lr)
            if bar is not None:
                bar.update(1)
            save_now = bool(cfg.save_every and state["step"] % cfg.save_every == 0)
            stop = bool(cfg.max_steps and state["step"] >= cfg.max_steps)
            if save_now or stop or steplog.due():
                flush_logs(save=save_now)
            if stop:
                break
        flush_logs()
        if stop:
            break
        # epoch finished
        state["epoch"] += 1
        val, best = None, False
        if cfg.validate and len(valid_set) >= cfg.batch_size * W:
            if "valid" not in loaders:
                loaders["valid"] = _loader(
                    valid_set,
                    StepBatches(
                        len(valid_set), cfg.batch_size, world=W, rank=d.rank, seed=cfg.seed, shuffle=False, train=False
                    ),
                    cfg.workers,
                )
            val = evaluate(model, loaders["valid"], cfg, d, autocast, state["epoch"])
            log_line({"step": state["step"], "epoch": epoch, "val_loss": val})
            if hp["scheduler"] == "plateau":
                if state["plateau_best"] is None or val < state["plateau_best"]:
                    state["plateau_best"], state["plateau_bad"] = val, 0
                else:
                    state["plateau_bad"] += 1
                    if state["plateau_bad"] > hp["plateau_patience"]:
                        state["lr_scale"] *= hp["plateau_factor"]
                        state["plateau_bad"] = 0
            if state["best_val"] is None or val < state["best_val"]:
                state["best_val"], state["bad_epochs"], best = val, 0, True
                if d.main:
                    export_checkpoint(
                        method,
                        cfg,
                        export_path,
                        epoch=state["epoch"],
                        step=state["step"],
                        val_loss=val,
                        n_pairs=n_pairs,
                        pairs_id=pairs_id,
                        tokenizer_dir=str(out / "tokenizer"),
                    )
            else:
                state["bad_epochs"] += 1
                if state["bad_epochs"] >= cfg.patience:
                    state["done"] = stop = True
        say_epoch(val, best)
        save_state()
    if bar is not None:
        bar.close()
    del loaders, train_loader  # shuts the persistent workers down
    state["done"] = state["done"] or state["epoch"] >= cfg.epochs
    save_state()
    if d.main:
        export_checkpoint(
            method,
            cfg,
            out / "last.ckpt",
            epoch=state["epoch"],
            step=state["step"],
            val_loss=None,
            n_pairs=n_pairs,
            pairs_id=pairs_id,
            tokenizer_dir=str(out / "tokenizer"),
        )
        if state["best_val"] is None:
            shutil.copyfile(out / "last.ckpt", export_path)
        print(
            f"wrote {export_path} (step {state['step']}, epoch {state['epoch']}); score it with: "
            f"python run_benchmark.py --encoder {export_path}",
            flush=True,
        )
    d.barrier()
    return export_path


@torch.no_grad()
def evaluate(model, loader, cfg: TrainConfig, d: Dist, autocast, epoch: int) -> float:
    """Mean validation loss over ``loader``'s batches (read from the device once, at the end)."""
    model.eval()
    batch_losses = []
    for i, batch in enumerate(loader):
        ctx = StepContext(
            chunks=cfg.virtual_ranks,
            rank=d.rank,
            world_size=d.world_size,
            seed=cfg.seed,
            step=-1 - i,
            epoch=epoch,
            all_reduce=d.all_reduce_sum if d.enabled else None,
            autocast=autocast,
        )
        batch_losses.append(model(_to(batch, d.device), ctx)["loss"].detach())
    model.train()
    total = 0.0
    for value in torch.stack(batch_losses).tolist() if batch_losses else []:
        total += value
    return d.mean(total / max(len(batch_losses), 1))


# ------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recipes.pretraining",
        description="Pretrain ConVIRT, GLoRIA or MGCA on MIMIC-CXR (image, report) pairs with real, synthetic or mixed "
        "images; writes a checkpoint that `run_benchmark.py --encoder` scores without conversion. "
        "Multi-GPU: torchrun --nproc_per_node N -m recipes.pretraining ...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("method and data")
    (
        g.add_argument(
            "--method",
            choices=PRESET_NAMES,
            required=True,
            help="pretraining preset: a method with the settings of one source code base (docs/protocol.md, "
            "'Recipes'): convirt = MGCA's ConVIRT re-implementation; convirt-original = edreisMD/ConVIRT-pytorch's "
            "settings; gloria = the official GLoRIA code (one random report sentence per step, 97 tokens, ImageNet V1 "
            "init); gloria-caption = GLoRIA on MGCA's whole caption (112 tokens); mgca",
        ),
    )
    g.add_argument(
        "--data-root", required=True, help="folder holding mimic-cxr-jpg/2.0.0 and mimic-cxr/2.0.0 (reports)"
    )
    g.add_argument(
        "--text-encoder", required=True, help="LOCAL Hugging Face BERT folder (e.g. Bio_ClinicalBERT); never downloaded"
    )
    g.add_argument("--tokenizer", default=None, help="local tokenizer folder (default: --text-encoder)")
    g.add_argument(
        "--image-source",
        choices=("real", "synthetic", "mixed"),
        default="real",
        help="real MIMIC-CXR images, synthetic ones from --synthetic-root, or a mix",
    )
    g.add_argument(
        "--synthetic-root",
        default=None,
        help="synthetic image set in the MIMIC-CXR-JPG layout (<root>/mimic-cxr-jpg/2.0.0/files/...); captions stay "
        "the real reports",
    )
    g.add_argument(
        "--synthetic-ratio",
        type=float,
        default=0.5,
        help="mixed: share of pairs whose image is synthetic (per-dicom_id hash)",
    )
    g.add_argument(
        "--generator",
        default=None,
        help="name of the image generator (e.g. roentgen, sd21); recorded and used in the file name",
    )
    g.add_argument("--limit", type=int, default=None, help="debugging: at most N train and N validation pairs")
    g = p.add_argument_group("model")
    g.add_argument(
        "--arch",
        default="resnet50",
        help="image encoder: resnet50, vit_base_patch16_224 (tests: resnet_tiny, vit_tiny_test)",
    )
    (
        g.add_argument(
            "--image-init",
            default=None,
            help="image weights (default: the preset's; gloria: imagenet-v1, convirt/mgca: imagenet, convirt-original: "
            "random): imagenet (torchvision's default weights, V2 for ResNet-50), imagenet-v1 / imagenet-v2 "
            "(IMAGENET1K_V1 / _V2), all read from the local torch hub cache; random; or a checkpoint/--encoder spec",
        ),
    )
    g.add_argument("--resize", type=int, default=256, help="resize the longer side to this and zero-pad to a square")
    g.add_argument("--crop", type=int, default=224, help="random (train) / centre (validation) crop size")
    g.add_argument(
        "--upsample",
        type=int,
        default=None,
        help="ResNet inputs are upsampled to this before conv1 (0 = off; default: the preset's, 299 as MGCA and "
        "GLoRIA, 0 for convirt-original)",
    )
    g.add_argument(
        "--local-layer",
        default="layer3",
        choices=("layer3", "layer4"),
        help="ResNet stage used as local (region) features",
    )
    g.add_argument(
        "--max-words",
        type=int,
        default=None,
        help="BERT tokens per text input, truncated/padded (default: the preset's; 112 MGCA/ConVIRT, 97 gloria, 128 "
        "convirt-original)",
    )
    g = p.add_argument_group("optimisation (default: the preset's value)")
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="pairs per GPU (process) and micro-step (preset: convirt/mgca 72, gloria 48, convirt-original 32). It "
        "sets the loss, not only the speed: the contrastive losses (InfoNCE, GLoRIA's global and word-region losses, "
        "MGCA's instance, token and prototype losses) compare each pair with the other pairs of its GPU's batch, so "
        "their value (chance level log(batch)) and gradients change with it, and neither more GPUs nor --accumulate "
        "adds negatives. To fit more pairs on one GPU with the preset's loss, raise --batch-size and --virtual-ranks "
        "together (--batch-size 144 --virtual-ranks 2 = the loss of 2 GPUs x 72)",
    )
    g.add_argument(
        "--accumulate",
        type=int,
        default=1,
        help="gradient accumulation micro-steps per optimizer step (averages the micro-batches' losses; no extra "
        "negatives)",
    )
    g.add_argument(
        "--virtual-ranks",
        type=int,
        default=1,
        help="split each batch into N chunks that behave like N DDP ranks (own batch-norm statistics and negatives, "
        "joint Sinkhorn)",
    )
    g.add_argument("--epochs", type=int, default=None, help="epochs (preset: 50; convirt-original 1000)")
    g.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop after this many optimizer steps (smoke runs); the schedule still spans --epochs",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (preset: convirt/mgca 2e-5, gloria 5e-5, convirt-original 1e-4)",
    )
    g.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="weight decay (preset: convirt/mgca 0.05, gloria/convirt-original 1e-6)",
    )
    g.add_argument(
        "--grad-clip", type=float, default=None, help="gradient norm clipping (preset: gloria 0.25, others off)"
    )
    g.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs on validation loss")
    g.add_argument(
        "--seed", type=int, default=42, help="seed of the model initialisation, pair order, crops and dropout"
    )
    g.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a method hyperparameter, e.g. --hp num_prototypes=500 --hp local_temperature=0.1 (see "
        "recipes/pretraining/methods)",
    )
    g = p.add_argument_group("run")
    g.add_argument(
        "--output",
        required=True,
        help="run folder: resume.pt, log.jsonl, tokenizer/, last.ckpt and the exported checkpoint",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=4,
        help="image-decoding worker processes per rank (kept alive across epochs); also decode the --image-cache build",
    )
    g.add_argument(
        "--image-cache",
        default=None,
        metavar="DIR",
        help="decode and resize every image ONCE into uint8 memory-mapped shards under DIR (content-keyed: file path, "
        "size, mtime, --resize; resumable; shared by real, synthetic and mixed runs), then read every epoch from it. "
        "Same batches bit for bit (crops stay per step). Costs resize^2 bytes per image: ~14 GB for MIMIC-CXR's 213k "
        "images at 256. 'auto' = $MEDVLP_CACHE/pretraining-images (~/.cache/medvlp-bench/... without MEDVLP_CACHE). "
        "Not given: no cache",
    )
    g.add_argument(
        "--log-every",
        type=int,
        default=None,
        metavar="N",
        help="read the losses from the device and write them to log.jsonl and the progress bar every N optimizer steps "
        "(one host sync per N steps instead of one per loss term and micro-step; log.jsonl still gets one line per "
        "step, img_per_s is the N-step average). Not given: 50 on CUDA, 1 on the CPU",
    )
    g.add_argument(
        "--channels-last",
        choices=CHANNELS_LAST,
        default="auto",
        help="NHWC layout for the CNN's weights and input (faster bf16 convolutions): auto = on for ResNets on CUDA, "
        "off on the CPU; ViTs never",
    )
    g.add_argument(
        "--compile",
        nargs="?",
        const="inductor",
        default=None,
        metavar="BACKEND",
        help="torch.compile the image and text towers (opt-in; backend inductor unless named). The first steps "
        "compile; fused kernels reorder floating point and draw dropout differently, so losses are not bit-identical "
        "to eager",
    )
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    g.add_argument(
        "--precision", default="auto", choices=("auto", "bf16", "fp32"), help="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    g.add_argument(
        "--save-every", type=int, default=1000, help="write resume.pt every N optimizer steps (and at every epoch end)"
    )
    g.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the per-epoch validation loss (then the last state is exported)",
    )
    g.add_argument("--no-resume", action="store_true", help="start afresh even if the output folder holds resume.pt")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _parse_hp(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--hp expects NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value
    return out


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    a = build_parser().parse_args(argv)
    return TrainConfig(
        method=a.method,
        data_root=a.data_root,
        text_encoder=a.text_encoder,
        tokenizer=a.tokenizer,
        output=a.output,
        image_source=a.image_source,
        synthetic_root=a.synthetic_root,
        synthetic_ratio=a.synthetic_ratio,
        generator=a.generator,
        arch=a.arch,
        image_init=a.image_init,
        resize=a.resize,
        crop=a.crop,
        upsample=a.upsample,
        local_layer=a.local_layer,
        max_words=a.max_words,
        batch_size=a.batch_size,
        accumulate=a.accumulate,
        virtual_ranks=a.virtual_ranks,
        epochs=a.epochs,
        max_steps=a.max_steps,
        lr=a.lr,
        weight_decay=a.weight_decay,
        grad_clip=a.grad_clip,
        patience=a.patience,
        seed=a.seed,
        workers=a.workers,
        device=a.device,
        precision=a.precision,
        save_every=a.save_every,
        validate=not a.no_validate,
        resume=not a.no_resume,
        progress=not a.no_progress,
        limit=a.limit,
        image_cache=a.image_cache,
        log_every=a.log_every,
        channels_last=a.channels_last,
        compile=a.compile,
        hparams=_parse_hp(a.hp),
    )


def main(argv: list[str] | None = None) -> int:
    d = None
    try:
        cfg = config_from_args(argv)
        d = setup(cfg.device)
        train(cfg, dist_info=d)
        return 0
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if d is not None:
            teardown(d)


if __name__ == "__main__":
    sys.exit(main())
