"""Image preprocessing of the classification protocol (MGCA's), on 8-bit grey arrays.

resize the longer side to ``resize`` (area interpolation) -> zero-pad to a centred square
-> random crop (train) or centre crop (eval) to ``crop`` -> optional MoCo-v2 photometric
augmentation -> float tensor (1, crop, crop) in [0, 1]. Channel replication and normalisation
belong to the encoder's input contract (:meth:`models.encoder.Encoder.prepare`), not here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything that determines the pixels an encoder sees (part of the cache key)."""

    resize: int = 256
    crop: int = 224
    train_augmentation: str = "crop"  # "crop" (random crop only) or "moco" (MoCo-v2 style)

    def to_dict(self) -> dict:
        return asdict(self)


def resize_and_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the longer side is ``size`` (INTER_AREA), then zero-pad to size x size, centred."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_h, new_w) != (height, width):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    pad_h, pad_w = size - new_h, size - new_w
    top, left = pad_h // 2, pad_w // 2
    return np.pad(image, ((top, pad_h - top), (left, pad_w - left)), constant_values=0)


def centre_crop(image: np.ndarray, crop: int) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = (height - crop) // 2, (width - crop) // 2
    return image[top : top + crop, left : left + crop]


def random_crop(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - crop + 1))
    left = int(rng.integers(0, width - crop + 1))
    return image[top : top + crop, left : left + crop]


def moco_photometric(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """MoCo-v2 augmentation on a (1, H, W) grey tensor in [0, 1].

    Colour jitter (brightness/contrast/saturation 0.4, hue 0.1) with p=0.8, random greyscale
    p=0.2, Gaussian blur sigma in [0.1, 2.0] with p=0.5 and a horizontal flip with p=0.5.
    On a grey image saturation, hue and greyscale are identities, so only brightness and
    contrast change pixels; they are kept so the recipe matches the protocol text.
    """
    def chance(p: float) -> bool:
        return bool(torch.rand((), generator=generator) < p)

    def uniform(low: float, high: float) -> float:
        return float(low + (high - low) * torch.rand((), generator=generator))

    if chance(0.8):
        order = torch.randperm(2, generator=generator).tolist()
        factors = (uniform(0.6, 1.4), uniform(0.6, 1.4))
        uniform(0.6, 1.4), uniform(-0.1, 0.1)  # saturation and hue draws (no-ops on grey)
        for index in order:
            if index == 0:
                tensor = v2.functional.adjust_brightness(tensor, factors[0])
            else:
                tensor = v2.functional.adjust_contrast(tensor, factors[1])
    chance(0.2)  # random greyscale: identity on a grey image
    if chance(0.5):
        size = tensor.shape[-1]
        kernel = int(0.1 * size) // 2 * 2 + 1
        tensor = v2.functional.gaussian_blur(tensor, [kernel, kernel], [uniform(0.1, 2.0)] * 2)
    if chance(0.5):
        tensor = torch.flip(tensor, dims=[-1])
    return tensor.clamp_(0.0, 1.0)


def to_tensor01(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).float().div_(255.0).unsqueeze(0)


def preprocess(
    image: np.ndarray,
    spec: PreprocessSpec,
    *,
    train: bool,
    seed: int | None = None,
    padded: bool = False,
) -> torch.Tensor:
    """Turn a decoded grey image into a (1, crop, crop) float tensor in [0, 1].

    ``seed`` fixes the random crop and augmentation of one training view, so a cached view
    is reproducible on its own (whatever batch or worker produced it).
    ``padded`` says ``image`` is already resized and padded to ``spec.resize``.
    """
    if not padded:
        image = resize_and_pad(image, spec.resize)
    if not train:
        return to_tensor01(centre_crop(image, spec.crop))
    rng = np.random.default_rng(seed)
    tensor = to_tensor01(random_crop(image, spec.crop, rng))
    if spec.train_augmentation == "moco":
        generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        tensor = moco_photometric(tensor, generator)
    return tensor
