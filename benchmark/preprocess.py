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


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything that determines the pixels an encoder sees (part of the cache key)."""

    resize: int = 256
    crop: int = 224
    train_augmentation: str = "crop"  # "crop" (random crop only) or "moco" (MoCo-v2 style)
    geometry: str = "letterbox"  # how an image becomes a square: "letterbox" or "stretch" (see fit_square)

    def to_dict(self) -> dict:
        """The spec as a dict; ``geometry`` only when it is not the classification protocol's
        letterbox, so the cache keys of letterboxed pixels stay what they were."""
        out = asdict(self)
        if out["geometry"] == "letterbox":
            del out["geometry"]
        return out


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


GEOMETRIES = ("stretch", "letterbox")


def stretch(image: np.ndarray, size: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resize to ``size`` x ``size`` without keeping the aspect ratio (the reference
    detection and segmentation code: ``cv2.resize(image, (224, 224), INTER_LINEAR)``)."""
    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=interpolation)


def fit_square(
    image: np.ndarray, size: int, geometry: str, *, stretch_interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """An image (or a float mask) as a ``size`` x ``size`` square: ``"stretch"`` (aspect not
    kept; linear interpolation, the reference's detection and segmentation image input; the
    reference resizes segmentation MASKS with area interpolation: pass ``cv2.INTER_AREA``) or
    ``"letterbox"`` (:func:`resize_and_pad`; the classification protocol's first step)."""
    if geometry == "stretch":
        return stretch(image, size, stretch_interpolation)
    if geometry == "letterbox":
        return resize_and_pad(image, size)
    raise ValueError(f"unknown geometry {geometry!r}; known: {', '.join(GEOMETRIES)}")


def centre_crop(image: np.ndarray, crop: int) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = (height - crop) // 2, (width - crop) // 2
    return image[top : top + crop, left : left + crop]


def random_crop(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - crop + 1))
    left = int(rng.integers(0, width - crop + 1))
    return image[top : top + crop, left : left + crop]


def moco_photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MoCo-v2 augmentation on a float32 grey image in [0, 1] (OpenCV/numpy, no torch threads).

    Colour jitter (brightness/contrast/saturation 0.4, hue 0.1; random order) with p=0.8,
    random greyscale p=0.2, Gaussian blur sigma in [0.1, 2.0] (kernel 10% of the side) with
    p=0.5 and a horizontal flip with p=0.5. On a grey image saturation, hue and greyscale are
    identities, so only brightness and contrast change pixels; their draws are kept so the
    recipe matches the protocol text. Contrast blends with the image mean, as torchvision does.
    """
    if rng.random() < 0.8:
        brightness, contrast = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4)
        rng.uniform(0.6, 1.4), rng.uniform(-0.1, 0.1)  # saturation and hue: no-ops on grey
        for step in rng.permutation(2):
            if step == 0:
                image = np.clip(image * brightness, 0.0, 1.0)
            else:
                image = np.clip((image - image.mean()) * contrast + image.mean(), 0.0, 1.0)
    rng.random()  # random greyscale: identity on a grey image
    if rng.random() < 0.5:
        kernel = int(0.1 * image.shape[-1]) // 2 * 2 + 1
        sigma = rng.uniform(0.1, 2.0)
        image = cv2.GaussianBlur(image, (kernel, kernel), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return np.ascontiguousarray(image, dtype=np.float32)


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
    ``padded`` says ``image`` is already a ``spec.resize`` square (:func:`fit_square`).
    """
    if not padded:
        image = fit_square(image, spec.resize, spec.geometry)
    if not train:
        return to_tensor01(centre_crop(image, spec.crop))
    rng = np.random.default_rng(seed)
    crop = random_crop(image, spec.crop, rng)
    if spec.train_augmentation == "moco":
        return torch.from_numpy(moco_photometric(crop.astype(np.float32) / 255.0, rng)).unsqueeze(0)
    return to_tensor01(crop)
