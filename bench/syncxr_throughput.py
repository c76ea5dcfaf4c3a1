"""SynCXR throughput on this machine's device: reports/s (a causal LM writing FINDINGS then
IMPRESSION), images/s (the synthesis step) and curated images/s (the multimodal judge).

    # no weights at hand: random models with real shapes (speed does not depend on the weights)
    python bench/syncxr_throughput.py --device cuda --llm-shape llama-3.1-8b --sd-shape sd2 --llm-batch-size 32
    # real local folders (what the recipe would load)
    python bench/syncxr_throughput.py --device cuda --llm /models/Llama-3.1-8B-Instruct --image-model /models/roentgen \
        --mllm /models/InternVL2_5-8B-hf
    # CPU smoke with the tests' tiny random models (the default; on the CPU 64 px images, 4 steps for tiny SD)
    python bench/syncxr_throughput.py --device cpu

Reports: a report is one FINDINGS of ``--findings-tokens`` and one IMPRESSION of
``--impression-tokens`` new tokens (generation forced to exactly that length, so a random model
and a real one cost the same), sampled with the recipe's temperature and top-p, in batches of
``--llm-batch-size``. With ``--llm DIR`` the prompts are the recipe's own (chat template
included); with ``--llm-shape`` they are random token ids of ``--findings-prompt-tokens`` /
``--impression-prompt-tokens`` (a Llama 3 tokenizer turns the recipe's prompts into about 250 and
350 tokens). The recipe's regeneration multiplies the cost by the attempts it needs (its manifest
counts them). Images: ``recipes.synthesis.generate.synthesize`` with the chosen preset (random
SD 1.x / 2.x shapes by ``--sd-shape``, or ``--image-model``). Curation: ``ImageJudge.p_yes`` (a
tiny random LLaVA unless ``--mllm``). Each is timed after one warm-up batch; ``--json FILE``
writes the results with the device and package versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LLM_SHAPES = {
    # hidden, intermediate, layers, heads, kv heads, vocab (the public configs' shapes)
    "tiny": (32, 64, 2, 2, 1, 800),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256),
    "llama-3.2-3b": (3072, 8192, 28, 24, 8, 128256),
    "llama-3.1-8b": (4096, 14336, 32, 32, 8, 128256),
}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_llm(shape: str, device, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, intermediate, layers, heads, kv, vocab = LLM_SHAPES[shape]
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def time_reports(args, device, dtype) -> dict:
    import torch

    from recipes.syncxr.reports import DEFAULT_SAMPLING, CausalLMGenerator, make_request

    batch = args.llm_batch_size
    entities = {
        "abnormality": ["pleural effusion", "atelectasis"],
        "non-abnormality": ["pneumothorax"],
        "disease": ["pneumonia"],
        "non-disease": [],
        "anatomy": ["lung bases", "heart"],
    }
    if args.llm:
        generator = CausalLMGenerator(args.llm, device=str(device), dtype=args.dtype)
        model, tokenizer = generator.model, generator.tokenizer

        def inputs(section):
            request = make_request(section, entities, findings="There is a small left pleural effusion." * 4)
            texts = [generator.render(request)] * batch
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not generator.chat)
            return {k: v.to(device) for k, v in enc.items()}

        source = str(args.llm)
        pad = tokenizer.pad_token_id
    else:
        model = random_llm(args.llm_shape, device, dtype)
        vocab = model.config.vocab_size
        generator_seed = torch.Generator().manual_seed(0)

        def inputs(section):
            length = args.findings_prompt_tokens if section == "findings" else args.impression_prompt_tokens
            ids = torch.randint(3, vocab, (batch, length), generator=generator_seed)
            return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}

        source = f"random:{args.llm_shape}"
        pad = 0
    new_tokens = {"findings": args.findings_tokens, "impression": args.impression_tokens}
    prepared = {section: inputs(section) for section in new_tokens}

    def one_round(limit=None):
        for section, n in new_tokens.items():
            n = min(n, limit) if limit else n
            with torch.inference_mode():
                model.generate(
                    **prepared[section],
                    do_sample=True,
                    temperature=DEFAULT_SAMPLING["temperature"],
                    top_p=DEFAULT_SAMPLING["top_p"],
                    min_new_tokens=n,
                    max_new_tokens=n,
                    pad_token_id=pad,
                )

    one_round(limit=4)  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(args.batches):
        one_round()
    sync(device)
    seconds = time.perf_counter() - start
    reports = batch * args.batches
    return {
        "model": source,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "batch_size": batch,
        "findings_tokens": args.findings_tokens,
        "impression_tokens": args.impression_tokens,
        "prompt_tokens": {s: int(prepared[s]["input_ids"].shape[1]) for s in prepared},
        "seconds": round(seconds, 3),
        "reports_per_s": round(reports / seconds, 4),
        "new_tokens_per_s": round(reports * sum(new_tokens.values()) / seconds, 1),
    }


def time_images(args, device, dtype_name) -> dict:
    import torch

    from recipes.synthesis.generate import PRESETS, load_pipeline, resolve_device_dtype, synthesize
    from recipes.synthesis.tiny import build_pipeline

    _, sd_dtype_name, sd_dtype = resolve_device_dtype(str(device), args.image_dtype)
    preset = PRESETS[args.preset]
    steps = args.steps or preset.steps
    height, width = args.height or preset.height, args.width or preset.width
    if args.image_model:
        pipe = load_pipeline(Path(args.image_model), sd_dtype, device, preset.scheduler)
        source = str(args.image_model)
    else:
        pipe = build_pipeline(args.sd_shape, scheduler="pndm" if preset.scheduler == "pndm" else "ddim")
        pipe = pipe.to(device, sd_dtype)
        pipe.set_progress_bar_config(disable=True)
        source = f"random:{args.sd_shape}"
    prompts = ["Small left pleural effusion with adjacent atelectasis."] * args.image_batch_size
    kw = dict(height=height, width=width, guidance=preset.guidance)
    synthesize(pipe, prompts, list(range(len(prompts))), steps=min(steps, 2), **kw)  # warm-up
    sync(device)
    start = time.perf_counter()
    for b in range(args.batches):
        synthesize(pipe, prompts, [b * len(prompts) + k for k in range(len(prompts))], steps=steps, **kw)
    sync(device)
    seconds = time.perf_counter() - start
    images = len(prompts) * args.batches
    del pipe
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "model": source,
        "preset": args.preset,
        "steps": steps,
        "size": [height, width],
        "dtype": sd_dtype_name,
        "batch_size": len(prompts),
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 4),
    }


def time_curation(args, device) -> dict:
    from recipes.syncxr.curation import ImageJudge
    from recipes.syncxr.tiny import calibration_images, write_tiny_image_text_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.mllm) if args.mllm else write_tiny_image_text_model(Path(tmp) / "tiny-mllm")
        judge = ImageJudge(folder, device=str(device), dtype=args.dtype)
        images = calibration_images(args.curate_batch_size, size=args.curate_image_size)
        judge.p_yes(images[:2])  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(args.batches):
            judge.p_yes(images)
        sync(device)
        seconds = time.perf_counter() - start
    return {
        "model": str(args.mllm) if args.mllm else "random:tiny-llava",
        "batch_size": len(images),
        "image_size": args.curate_image_size,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(images) * args.batches / seconds, 4),
    }


def main(argv=None) -> int:
    import torch

    from benchmark.provenance import device_description, package_versions
    from recipes.synthesis.generate import PRESETS
    from recipes.syncxr.reports import quiet_transformers, resolve_device

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:1, ...")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="LLM / MLLM dtype")
    p.add_argument("--parts", default="reports,images,curation", help="what to time (default all three)")
    p.add_argument("--batches", type=int, default=2, help="timed batches after one warm-up (default 2)")
    p.add_argument("--llm", help="local causal LM folder (default: random weights of --llm-shape)")
    p.add_argument("--llm-shape", default="tiny", choices=sorted(LLM_SHAPES), help="random LLM shape (tiny)")
    p.add_argument("--llm-batch-size", type=int, default=8, help="reports per generate call (8)")
    p.add_argument("--findings-tokens", type=int, default=192, help="new tokens per FINDINGS (192)")
    p.add_argument("--impression-tokens", type=int, default=64, help="new tokens per IMPRESSION (64)")
    p.add_argument("--findings-prompt-tokens", type=int, default=256, help="random prompt length (256)")
    p.add_argument("--impression-prompt-tokens", type=int, default=384, help="random prompt length (384)")
    p.add_argument("--image-model", help="local diffusers pipeline folder (default: random --sd-shape)")
    p.add_argument("--sd-shape", default="tiny", choices=["tiny", "sd1", "sd2"], help="random SD shapes (tiny)")
    p.add_argument("--preset", default="roentgen", choices=sorted(PRESETS), help="synthesis preset (roentgen)")
    p.add_argument("--steps", type=int, default=50, help="sampling steps (50, the recipe's default)")
    p.add_argument("--height", type=int, help="image height (default: the preset's; 64 on the CPU)")
    p.add_argument("--width", type=int, help="image width (default: the preset's; 64 on the CPU)")
    p.add_argument("--image-dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"], help="auto: fp16 CUDA")
    p.add_argument("--image-batch-size", type=int, default=8, help="images per pipeline call (8)")
    p.add_argument("--mllm", help="local image-text-to-text folder (default: a tiny random LLaVA)")
    p.add_argument("--curate-batch-size", type=int, default=8, help="images per judge call (8)")
    p.add_argument("--curate-image-size", type=int, default=512, help="side of the judged images (512)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()
    device, dtype_name, dtype = resolve_device(args.device, args.dtype)
    if device.type == "cpu":
        args.height, args.width = args.height or 64, args.width or 64
        if args.steps == 50 and args.sd_shape == "tiny":
            args.steps = 4
    parts = [x for x in args.parts.split(",") if x]
    results = {"device": device_description(device), "dtype": dtype_name}
    if "reports" in parts:
        results["reports"] = time_reports(args, device, dtype)
        print(f"[syncxr-throughput] reports: {json.dumps(results['reports'])}", flush=True)
    if "images" in parts:
        results["images"] = time_images(args, device, dtype_name)
        print(f"[syncxr-throughput] images: {json.dumps(results['images'])}", flush=True)
    if "curation" in parts:
        results["curation"] = time_curation(args, device)
        print(f"[syncxr-throughput] curation: {json.dumps(results['curation'])}", flush=True)
    results["packages"] = package_versions()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
