"""Benchmark: the pretraining image cache against decoding and resizing at every access.

    .venv/bin/python bench/pretraining_image_cache.py [--images 200] [--size 2000] [--resize 256] [--workers 0]

Writes ``--images`` full-resolution-like grey JPEGs (``--size`` px square, quality 95, smooth
anatomy-like shapes plus noise) into a temporary MIMIC-CXR-JPG layout
(``mimic-cxr-jpg/2.0.0/files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg``), then measures, in this
process (one torch thread, as a worker has), images per second of what a pretraining DataLoader
worker does per item:

  (a) decode + resize + pad + random crop + normalise (no cache),
  (b) read the resized image from the cache + random crop + normalise,

after building the cache with ``--workers`` decoding processes (timed too). Both passes read
files the OS has just written (page cache warm), so (a) is decoding, not disk. DataLoader
workers multiply both rates. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from recipes.pretraining.data import ImageSpec
from recipes.pretraining.image_cache import ImageCache

MIMIC_IMAGES = 213_000  # about the frontal MIMIC-CXR-JPG images of the pretraining pair set


def radiograph_like(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth grey image with two 'lungs', a 'spine' and film grain (compresses like a radiograph)."""
    small = 64
    yy, xx = np.mgrid[0:small, 0:small] / small
    image = 0.55 + 0.25 * yy
    for cx in (0.3, 0.7):
        image -= 0.35 * np.exp(-(((xx - cx) / 0.16) ** 2 + ((yy - 0.5) / 0.3) ** 2))
    image += 0.3 * np.exp(-(((xx - 0.5) / 0.05) ** 2)) + 0.05 * rng.standard_normal((small, small))
    big = np.asarray(
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC), np.float32
    )
    big += rng.normal(0, 6, big.shape)
    return np.clip(big, 0, 255).astype(np.uint8)


def write_layout(root: Path, n: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        subject, study = 10_000_000 + i, 50_000_000 + i
        p = (
            root
            / "mimic-cxr-jpg"
            / "2.0.0"
            / "files"
            / f"p{str(subject)[:2]}"
            / f"p{subject}"
            / f"s{study}"
            / f"dicom{i:06d}.jpg"
        )
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(radiograph_like(size, rng)).save(p, quality=95)
        paths.append(str(p))
    return paths


def rate(fn, n: int, passes: int) -> float:
    best = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200, help="images to generate")
    p.add_argument(
        "--size", type=int, default=2000, help="side of the generated JPEGs (MIMIC-CXR-JPG: about 2500 x 3000)"
    )
    p.add_argument("--resize", type=int, default=256, help="the recipe's --resize")
    p.add_argument("--crop", type=int, default=224, help="the recipe's --crop")
    p.add_argument("--workers", type=int, default=0, help="decoding processes for the cache build")
    p.add_argument("--passes", type=int, default=2, help="timed passes over the images (the best is kept)")
    p.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed afterwards)")
    a = p.parse_args()

    torch.set_num_threads(1)  # as in a DataLoader worker (torch sets it there)
    work = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="medvlp-image-cache-bench-"))
    try:
        t0 = time.perf_counter()
        paths = write_layout(work / "data", a.images, a.size)
        jpeg_mb = sum(Path(x).stat().st_size for x in paths) / a.images / 1e6
        print(
            f"wrote {a.images} JPEGs of {a.size} x {a.size} (q95, {jpeg_mb:.2f} MB each) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        spec = ImageSpec(a.resize, a.crop)

        t0 = time.perf_counter()
        cached = ImageCache(work / "cache", a.resize).prepare(paths, workers=a.workers, progress=False, log=None)
        build_s = time.perf_counter() - t0
        disk = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file())

        for i in range(min(a.images, 20)):  # the two paths give the same tensors
            assert np.array_equal(
                spec.augment(spec.load(paths[i]), True, i).numpy(), spec.augment(cached[i], True, i).numpy()
            )
        decode = rate(lambda i: spec.augment(spec.load(paths[i]), True, i), a.images, a.passes)
        from_cache = rate(lambda i: spec.augment(cached[i], True, i), a.images, a.passes)

        print(
            f"cache build ({a.workers} workers): {build_s:.1f} s = {a.images / build_s:.1f} images/s; "
            f"{disk / a.images / 1e3:.1f} kB per image on disk ({disk / 1e6:.1f} MB here; "
            f"{MIMIC_IMAGES * a.resize**2 / 1e9:.1f} GB for {MIMIC_IMAGES:,} images)"
        )
        print(f"(a) decode + resize per access : {decode:10.1f} images/s (one process)")
        print(f"(b) read from the cache        : {from_cache:10.1f} images/s (one process)")
        print(f"ratio (b) / (a)                : {from_cache / decode:10.1f} x")
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
