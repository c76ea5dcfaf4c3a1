"""Synthetic-image throughput: images/s per device for each generation preset (sd21, roentgen).

    # a real pipeline (CUDA, fp16, the presets' own steps)
    python bench/synthesis_throughput.py --model /models/roentgen --presets roentgen --batch-size 8
    # no weights at hand: random models with the real SD 2.x / SD 1.x shapes (speed is the same)
    python bench/synthesis_throughput.py --architecture sd2 --batch-size 8
    # CPU smoke with the tiny random pipeline of the tests
    python bench/synthesis_throughput.py --architecture tiny --height 64 --width 64 --steps 4

It times the same call the recipe makes (``recipes.synthesis.generate.synthesize``: per-image CPU
latents, classifier-free guidance, VAE decode, conversion to grey uint8) after one warm-up batch,
and prints the settings with the result (``--json FILE`` also writes them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import torch

    from benchmark.provenance import device_description, package_versions
    from recipes.synthesis.generate import PRESETS, load_pipeline, resolve_device_dtype, synthesize
    from recipes.synthesis.tiny import build_pipeline

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", help="local diffusers pipeline directory (default: a random pipeline, see --architecture)"
    )
    p.add_argument(
        "--architecture",
        default="tiny",
        choices=["tiny", "sd1", "sd2"],
        help="random pipeline shapes when --model is not given",
    )
    p.add_argument("--presets", default="sd21,roentgen", help="comma-separated presets (default sd21,roentgen)")
    p.add_argument("--steps", type=int, help="override the presets' sampling steps")
    p.add_argument("--height", type=int, help="override the presets' height")
    p.add_argument("--width", type=int, help="override the presets' width")
    p.add_argument("--batch-size", type=int, default=8, help="images per pipeline call (default 8)")
    p.add_argument("--batches", type=int, default=2, help="timed batches after one warm-up batch (default 2)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:1, ...")
    p.add_argument(
        "--dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"], help="auto: fp16 on CUDA, fp32 on the CPU"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype_name, dtype = resolve_device_dtype(args.device, args.dtype)
    results = []
    for name in [s for s in args.presets.split(",") if s]:
        preset = PRESETS[name]
        steps, height, width = args.steps or preset.steps, args.height or preset.height, args.width or preset.width
        scheduler = preset.scheduler
        if args.model:
            pipe = load_pipeline(Path(args.model), dtype, device, scheduler)
            source = str(args.model)
        else:
            pipe = build_pipeline(args.architecture, scheduler="pndm" if scheduler == "pndm" else "ddim").to(
                device, dtype
            )
            pipe.set_progress_bar_config(disable=True)
            source = f"random:{args.architecture}"
        prompts = ["Moderate right pleural effusion with adjacent atelectasis."] * args.batch_size
        kw = dict(height=height, width=width, guidance=preset.guidance)
        synthesize(pipe, prompts, list(range(args.batch_size)), steps=min(steps, 2), **kw)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for b in range(args.batches):
            synthesize(pipe, prompts, list(range(b * args.batch_size, (b + 1) * args.batch_size)), steps=steps, **kw)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        n = args.batches * args.batch_size
        row = {
            "preset": name,
            "pipeline": source,
            "scheduler": type(pipe.scheduler).__name__,
            "steps": steps,
            "guidance": preset.guidance,
            "height": height,
            "width": width,
            "batch_size": args.batch_size,
            "images": n,
            "seconds": round(seconds, 3),
            "images_per_s": round(n / seconds, 4),
            "s_per_image": round(seconds / n, 4),
            "dtype": dtype_name,
            "device": device_description(device),
            "threads": torch.get_num_threads(),
            "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            if device.type == "cuda"
            else None,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        del pipe
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(
        f"\n{'preset':<10} {'pipeline':<14} {'scheduler':<16} {'steps':>5} {'size':>9} {'batch':>5} "
        f"{'img/s':>8}  device"
    )
    for r in results:
        print(
            f"{r['preset']:<10} {r['pipeline'][:14]:<14} {r['scheduler']:<16} {r['steps']:>5} "
            f"{r['height']}x{r['width']:<5} "
            f"{r['batch_size']:>5} {r['images_per_s']:>8.3f}  {r['device']} {r['dtype']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "packages": package_versions()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
