"""Throughput of the classification pipeline's parts, and a projection for the paper suite.

    python bench/classification_throughput.py [--device cuda] [--encoder random:resnet50]

Measures (1) image decoding + preprocessing per worker process for full-size inputs
(CheXpert-v1.0-small JPEGs of 390x320 and RSNA 1024x1024 DICOMs, written here as stand-ins),
(2) encoder forward throughput at the probe's input (224 crop upsampled to 299 for CNNs) in
bf16 on CUDA, and (3) linear-probe training speed on features of CheXpert's real size
(186,027 x 2048). It then projects the wall time of the paper suite's classification part
(3 tasks x 3 fractions x 3 seeds) from the MGCA split sizes. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.features import encode_batch  # noqa: E402
from benchmark.images import read_grey  # noqa: E402
from benchmark.linear_probe import train_linear_probe  # noqa: E402
from benchmark.preprocess import PreprocessSpec, preprocess, resize_and_pad  # noqa: E402
from benchmark.task_spec import LinearProbeRecipe  # noqa: E402
from models.loading import load_encoder  # noqa: E402

SIZES = {  # MGCA split sizes: train, val, test
    "chexpert_cls": (186_027, 5_000, 202),
    "rsna_cls": (16_010, 5_337, 5_337),
    "covidx_cls": (23_988, 5_998, 400),
}


def write_stand_ins(folder: Path) -> dict[str, Path]:
    from PIL import Image

    from tests.official_layouts import write_dicom

    rng = np.random.default_rng(0)
    jpeg = folder / "chexpert.jpg"
    Image.fromarray((rng.random((390, 320)) * 255).astype(np.uint8)).save(jpeg, quality=95)
    dicom = folder / "rsna.dcm"
    write_dicom(dicom, (rng.random((1024, 1024)) * 255).astype(np.uint8))
    return {"jpeg 390x320": jpeg, "dicom 1024x1024": dicom}


def decode_rate(path: Path, spec: PreprocessSpec, views: int, seconds: float = 3.0) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        padded = resize_and_pad(read_grey(path), spec.resize)
        for v in range(views):
            preprocess(padded, spec, train=True, seed=v, padded=True)
        count += 1
    return count / (time.perf_counter() - started)


def encoder_rate(encoder, device, batch: int, crop: int, upsample: float, repeats: int) -> float:
    images = torch.rand(batch, 1, crop, crop)
    for _ in range(2):
        encode_batch(encoder, images, device, upsample)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        encode_batch(encoder, images, device, upsample)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - started)


def probe_epoch_seconds(device, n: int, dim: int, epochs: int = 2) -> float:
    views = torch.randn(1, n, dim, dtype=torch.float16)
    targets = (torch.rand(n, 5) < 0.3).float()
    recipe = LinearProbeRecipe(loss="bce", max_epochs=epochs, patience=epochs)
    started = time.perf_counter()
    train_linear_probe(
        views, targets, views[0, :5000].float(), targets[:5000], 5, recipe, seed=0, device=device, progress=False
    )
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--encoder", default="random:resnet50")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--views", type=int, default=4, help="cached augmented views per training image")
    parser.add_argument(
        "--workers", type=int, default=None, help="decoding processes assumed for the projection (default: cpus - 1)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    import os

    workers = args.workers or max(1, (os.cpu_count() or 2) - 1)
    batch = args.batch or (256 if device.type == "cuda" else 16)
    spec = PreprocessSpec(resize=256, crop=224, train_augmentation="moco")
    with tempfile.TemporaryDirectory() as tmp:
        stand_ins = write_stand_ins(Path(tmp))
        decode = {name: decode_rate(path, spec, args.views) for name, path in stand_ins.items()}
    loaded = load_encoder(args.encoder)
    encoder = loaded.encoder.to(device).eval()
    upsample = 299 / 224 if encoder.contract.input_size is None else encoder.contract.input_size / 224
    rate = encoder_rate(encoder, device, batch, 224, upsample, repeats=20 if device.type == "cuda" else 2)
    probe = probe_epoch_seconds(device, 186_027 if device.type == "cuda" else 20_000, encoder.feature_dim)
    if device.type != "cuda":
        probe *= 186_027 / 20_000

    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
        f"encoder {args.encoder}, batch {batch}"
    )
    for name, r in decode.items():
        print(f"decode + {args.views} train views, one process, {name}: {r:7.1f} images/s")
    print(
        f"encoder forward (input {round(224 * upsample)} px, {'bf16' if device.type == 'cuda' else 'fp32'}): "
        f"{rate:9.1f} images/s"
    )
    print(f"linear probe, CheXpert-size epoch (186,027 x {encoder.feature_dim}, batch 48): {probe:6.2f} s")

    total = 0.0
    print(f"\nprojection for the paper classification suite ({args.views} views, {workers} decoding workers):")
    for task, (train, val, test) in SIZES.items():
        source = "dicom 1024x1024" if task == "rsna_cls" else "jpeg 390x320"
        decode_s = (train + val + test) / (decode[source] * workers)
        encode_s = (train * args.views + val + test) / rate
        extract = max(decode_s, encode_s)  # decoding and encoding overlap
        # 9 units; probe epochs scale with train size; assume 50 epochs (upper bound, early stopping cuts it)
        epoch = probe * train / 186_027
        probes = 3 * 50 * epoch * (1.0 + 0.1 + 0.01)
        total += extract + probes
        print(
            f"  {task:13s} features {extract:7.1f} s (decode {decode_s:7.1f}, encode {encode_s:7.1f}); "
            f"probes (9 units, <= 50 epochs) {probes:7.1f} s"
        )
    print(f"  total <= {total / 60:.1f} min")


if __name__ == "__main__":
    main()
