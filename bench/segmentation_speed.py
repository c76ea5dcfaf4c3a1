"""Where does a segmentation unit's time go? Times each phase per image on random inputs.

    python bench/segmentation_speed.py --encoder random:resnet50 --size 224 --batch 8 --device cpu

Phases: shift-scale-rotate augmentation (numpy/cv2), frozen encoder forward (inference),
U-Net decoder forward+backward on cached features, a full training step (encoder forward +
decoder forward/backward + AdamW), and a decoder-only evaluation pass (what validation and
test cost once the val/test pyramids are cached). bf16 autocast on CUDA.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    import numpy as np
    import torch
    from mmengine.optim import build_optim_wrapper

    from benchmark.families.segmentation import data_samples, shift_scale_rotate, to_input
    from benchmark.features import autocast_context
    from benchmark.openmmlab.segmentation_config import build_segmentor, segmentation_config
    from benchmark.registry import all_tasks
    from models.loading import load_encoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="random:resnet50")
    parser.add_argument("--task", default="siim_seg")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    task = all_tasks()[args.task]
    loaded = load_encoder(args.encoder)
    loaded.encoder.to(device).eval()
    config = segmentation_config(
        task, loaded.spec, tuple(loaded.encoder.pyramid_channels), input_size=args.size, seed=0
    )
    model = build_segmentor(config, loaded=loaded).to(device)
    optim = build_optim_wrapper(model, config["optim_wrapper"])
    rng = np.random.default_rng(0)
    images = (rng.random((args.batch, args.size, args.size)) * 255).astype(np.uint8)
    masks = rng.random((args.batch, args.size, args.size)) > 0.9
    x, samples = to_input(images, device), data_samples(masks, device)
    with torch.inference_mode():
        feats = [f.float().clone() for f in model.extract_feat(x)]
    feats = [f.clone() for f in feats]

    def augment():
        for k in range(args.batch):
            shift_scale_rotate(images[k], masks[k], task.recipe.augmentation, rng)

    def encoder_forward():
        with torch.inference_mode(), autocast_context(device):
            model.extract_feat(x)

    def decoder_step():
        model.train()
        with autocast_context(device):
            loss, _ = model.parse_losses(model.decode_head.loss(feats, samples, model.train_cfg))
        optim.update_params(loss)

    def full_step():
        model.train()
        with autocast_context(device):
            loss, _ = model.parse_losses(model.loss(x, samples))
        optim.update_params(loss)

    def decoder_eval():
        model.eval()
        with torch.no_grad(), autocast_context(device):
            model.decode_head(feats)

    rows = []
    for name, fn in (
        ("augmentation (cv2)", augment),
        ("encoder forward (frozen)", encoder_forward),
        ("decoder forward+backward+AdamW", decoder_step),
        ("full training step", full_step),
        ("decoder-only eval (cached features)", decoder_eval),
    ):
        seconds = timed(fn, args.repeats, sync)
        rows.append((name, 1000 * seconds / args.batch))
    print(f"{args.encoder} on {device}, input {args.size}, batch {args.batch}, torch threads {torch.get_num_threads()}")
    for name, ms in rows:
        print(f"  {name:40s} {ms:8.2f} ms/image")
    per_level = [tuple(f.shape[1:]) for f in feats]
    mb = sum(int(np.prod(s)) for s in per_level) * 2 / 2**20
    print(f"  cached pyramid per image (fp16): {mb:.2f} MiB, levels {per_level}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
