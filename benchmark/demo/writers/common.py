"""What every dataset writer shares: the generation context, seeded RNGs, exact quotas."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..drawing import Radiograph

T = TypeVar("T")


def _no_progress(_: int) -> None:
    return None


@dataclass(frozen=True)
class DemoContext:
    """Parameters of one generation, plus a callback that advances the progress bar."""

    root: Path
    seed: int
    image_size: int
    scale: float
    advance: Callable[[int], None] = field(default=_no_progress, compare=False)

    def count(self, at_full_scale: int, minimum: int) -> int:
        """``at_full_scale * scale`` rounded, but at least ``minimum``."""
        return max(minimum, int(round(at_full_scale * self.scale)))

    def rng(self, dataset: str) -> np.random.Generator:
        """The dataset's generator for everything but pixels (ids, labels, file formats)."""
        return np.random.default_rng([self.seed, stable_id(dataset), 0])

    def image_rng(self, dataset: str, index: int) -> np.random.Generator:
        """The generator that draws image ``index`` of the dataset (independent per image)."""
        return np.random.default_rng([self.seed, stable_id(dataset), 1, index])


def stable_id(text: str) -> int:
    """A platform-independent integer for a name (Python's ``hash`` is salted)."""
    return zlib.crc32(text.encode("utf-8"))


def quota_choice(rng: np.random.Generator, n: int, shares: Mapping[T, float]) -> list[T]:
    """``n`` values with EXACT shares (largest remainder), shuffled.

    Every value with a positive share appears at least once when ``n`` allows it, so the
    small demo scales still contain every class.
    """
    keys = list(shares)
    exact = np.array([shares[k] for k in keys], dtype=float) * n / max(sum(shares.values()), 1e-12)
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    positive = [i for i, k in enumerate(keys) if shares[k] > 0]
    if n >= len(positive):
        for i in positive:
            while counts[i] == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[i] += 1
    values = [k for k, c in zip(keys, counts) for _ in range(int(c))]
    return [values[i] for i in rng.permutation(n)]


def uuid_like(rng: np.random.Generator) -> str:
    """A random (but seeded) version-4 UUID string, like RSNA patientIds."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def hex_groups(rng: np.random.Generator, groups: int = 5, width: int = 8) -> str:
    """``02aa804e-bde0afdd-...``: MIMIC-CXR dicom_id style."""
    return "-".join(rng.bytes(width // 2).hex() for _ in range(groups))


def label_text(value: float | None) -> str:
    """A CheXpert-style label cell: ``1.0``, ``0.0``, ``-1.0`` or blank."""
    return "" if value is None else f"{float(value):.1f}"


def block_means(pixels: np.ndarray, blocks: int = 8) -> list[int]:
    """``blocks`` x ``blocks`` rounded block means of an image (a small fingerprint for truth files)."""
    h, w = pixels.shape
    trimmed = pixels[: h - h % blocks, : w - w % blocks].astype(np.float64)
    means = trimmed.reshape(blocks, trimmed.shape[0] // blocks, blocks, trimmed.shape[1] // blocks).mean(axis=(1, 3))
    return [int(round(v)) for v in means.ravel()]


def radiograph_truth(picture: Radiograph) -> dict:
    """The drawn anatomy and findings of a picture, JSON-ready."""
    return {"anatomy": picture.anatomy.to_json(), "drawn": picture.findings_json()}


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def sample_sex_age(rng: np.random.Generator) -> tuple[str, int]:
    return ("Male" if rng.uniform() < 0.55 else "Female"), int(np.clip(rng.normal(60, 17), 18, 90))


def kaggle_dicom_attributes(patient_id: str, sex: str, age: int, view: str, size: int) -> dict[str, object]:
    """The top-level elements of the RSNA / SIIM Kaggle DICOMs (anonymised, date 19010101)."""
    spacing = f"{0.143 * 1024 / size:.6g}"  # the real 1024-pixel images have 0.143 mm pixels
    return {
        "StudyDate": "19010101",
        "StudyTime": "000000.00",
        "AccessionNumber": "",
        "Modality": "CR",
        "ConversionType": "WSD",
        "ReferringPhysicianName": "",
        "SeriesDescription": f"view: {view}",
        "PatientName": patient_id,
        "PatientID": patient_id,
        "PatientBirthDate": "",
        "PatientSex": sex[0],
        "PatientAge": f"{age:03d}Y",
        "BodyPartExamined": "CHEST",
        "ViewPosition": view,
        "StudyID": "",
        "SeriesNumber": 1,
        "InstanceNumber": 1,
        "PatientOrientation": "",
        "PixelSpacing": [spacing, spacing],
    }
