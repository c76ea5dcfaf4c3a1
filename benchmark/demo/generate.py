"""Generate the demo ("smoke") suite: small synthetic datasets in the official layouts.

    from benchmark.demo import generate_demo_suite
    generate_demo_suite("demo_data", seed=0, scale=1.0)

writes, under the root, CheXpert-v1.0-small/, rsna-pneumonia-detection-challenge/, COVIDx/,
siim-acr-pneumothorax/, object-CXR/, mimic-cxr-jpg/ (+ mimic-cxr/ reports), each in the real
dataset's exact on-disk layout, so every dataset adapter and task runs on it unchanged. The
pictures are synthetic and their labels are caused by what is drawn, so a better encoder
scores higher, but the numbers are NOT comparable with published results.

Completion protocol: files are written atomically; ``.demo_truth/<dataset>.started`` marks a
dataset being (re)generated and ``.demo_truth/<dataset>.json`` (the ground truth) a finished
one; ``DEMO_SUITE.txt`` is written LAST. A later call with the same parameters finds the
marker and returns at once; after a killed run (no marker) the suite is regenerated.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .files import json_text, write_atomic
from .writers import WRITERS, DatasetWriter, DemoContext

GENERATOR_VERSION = "1"
MARKER_FILE = "DEMO_SUITE.txt"
TRUTH_DIR = ".demo_truth"
MARKER_HEADLINE = "medvlp-bench demo (smoke) suite: synthetic images, numbers are NOT comparable with published results"
DEMO_DATASETS: tuple[str, ...] = tuple(writer.name for writer in WRITERS)
MIN_IMAGE_SIZE = 32


@dataclass(frozen=True)
class SuiteParameters:
    """What makes two generations identical (recorded in the marker and the truth files)."""

    version: str
    seed: int
    image_size: int
    scale: float

    def to_json(self) -> dict:
        return {
            "generator_version": self.version,
            "seed": self.seed,
            "image_size": self.image_size,
            "scale": self.scale,
        }


def _marker_text(parameters: SuiteParameters, datasets: Iterable[str]) -> str:
    lines = [
        MARKER_HEADLINE,
        f"generator_version: {parameters.version}",
        f"seed: {parameters.seed}",
        f"image_size: {parameters.image_size}",
        f"scale: {parameters.scale!r}",
        f"datasets: {', '.join(datasets)}",
        "",
        "Every image is drawn by benchmark/demo (anatomy + findings); labels, boxes and masks",
        "follow from the drawing. Use this suite to check that the pipeline runs end to end.",
    ]
    return "\n".join(lines) + "\n"


def read_marker(root: str | Path) -> tuple[SuiteParameters, tuple[str, ...]] | None:
    """The parameters and datasets of a COMPLETE generation under ``root``, or None."""
    path = Path(root) / MARKER_FILE
    if not path.is_file():
        return None
    fields = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        parameters = SuiteParameters(
            fields["generator_version"], int(fields["seed"]), int(fields["image_size"]), float(fields["scale"])
        )
    except (KeyError, ValueError):
        return None
    datasets = tuple(name.strip() for name in fields.get("datasets", "").split(",") if name.strip())
    return parameters, datasets


def _select(datasets: Iterable[str] | None) -> list[DatasetWriter]:
    if datasets is None:
        return list(WRITERS)
    if isinstance(datasets, str):
        datasets = [datasets]
    by_name = {}
    for writer in WRITERS:
        for key in (writer.name, *writer.aliases):
            by_name[key.lower()] = writer
    chosen = set()
    for name in datasets:
        writer = by_name.get(str(name).lower())
        if writer is None:
            raise ConfigError(
                f"Unknown demo dataset {name!r}; choose from {', '.join(DEMO_DATASETS)} (or their short names)."
            )
        chosen.add(writer.name)
    return [w for w in WRITERS if w.name in chosen]


def _validate(seed: int, image_size: int, scale: float) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"image_size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale must be a positive number, got {scale!r}")


def _claim(root: Path, writer: DatasetWriter) -> None:
    """Make the dataset's folders ours and empty; refuse to touch folders the suite did not write."""
    truth_dir = root / TRUTH_DIR
    started, truth = truth_dir / f"{writer.name}.started", truth_dir / f"{writer.name}.json"
    ours = started.exists() or truth.exists()
    for folder in writer.folders:
        path = root / folder
        if path.exists() and not ours and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(
                f"{path} exists and was not written by the demo-suite generator; refusing to overwrite it. "
                "Generate the demo suite into an empty folder (not a folder holding real datasets)."
            )
    write_atomic(started, "generation in progress\n")
    truth.unlink(missing_ok=True)
    for folder in writer.folders:
        if (root / folder).exists():
            shutil.rmtree(root / folder)


class _NoProgressBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool):
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is a dependency, but the generator works without it
            return _NoProgressBar()
        return tqdm(total=total, desc="demo suite", unit="img")
    return _NoProgressBar()


def generate_demo_suite(
    root: str | Path,
    *,
    seed: int = 0,
    image_size: int = 128,
    scale: float = 1.0,
    datasets: Iterable[str] | None = None,
    progress: bool = True,
) -> Path:
    """Write the demo suite under ``root`` and return ``root``.

    ``image_size``: side of the square images (RSNA and SIIM use twice that, like their larger
    originals); ``scale`` multiplies every image count (1.0: ~3,700 images); ``datasets``:
    folder names from :data:`DEMO_DATASETS` or short names (``chexpert``, ``rsna``, ``covidx``,
    ``siim``, ``object_cxr``, ``mimic``), default all. Same arguments -> byte-identical files.
    Returns immediately when ``root/DEMO_SUITE.txt`` records a complete generation with the
    same version, seed, image size and scale that covers the requested datasets.
    """
    _validate(seed, image_size, scale)
    root = Path(root)
    parameters = SuiteParameters(GENERATOR_VERSION, seed, image_size, float(scale))
    selected = _select(datasets)
    previous = read_marker(root)
    already_done: tuple[str, ...] = ()
    if previous is not None and previous[0] == parameters:
        already_done = previous[1]
        selected = [w for w in selected if w.name not in already_done]
        if not selected:
            return root
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER_FILE).unlink(missing_ok=True)  # incomplete until the marker is rewritten

    context = DemoContext(root, seed, image_size, float(scale))
    plans = {writer.name: writer.plan(context) for writer in selected}
    bar = _progress_bar(sum(w.count_images(plans[w.name]) for w in selected), progress)
    context = DemoContext(root, seed, image_size, float(scale), advance=bar.update)
    try:
        for writer in selected:
            bar.set_postfix_str(writer.name)
            _claim(root, writer)
            truth = writer.write(context, plans[writer.name])
            write_atomic(root / TRUTH_DIR / f"{writer.name}.json", json_text({**parameters.to_json(), **truth}))
            (root / TRUTH_DIR / f"{writer.name}.started").unlink()
    finally:
        bar.close()
    done = {*already_done, *(w.name for w in selected)}
    write_atomic(root / MARKER_FILE, _marker_text(parameters, [name for name in DEMO_DATASETS if name in done]))
    return root
