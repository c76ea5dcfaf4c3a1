"""``run_benchmark.py inspect --encoder SPEC``: what the harness makes of an encoder, before a run.

Loads the encoder exactly as a run would (:func:`models.loading.load_encoder`: format
detection, strict loading, input contract) and reports, as text or ``--json``:

* the detected format, the official code its layout follows, the method hint and sha256;
* the architecture and where it came from (``--arch``, named by the format, or inferred);
* backbone tensors loaded / missing / unexpected / with the wrong shape, and the checkpoint
  tensors left out (method heads, text towers, classifier heads), counts and examples;
* the input contract (mean, std, channels, fixed size) and its origin;
* the global feature size and the pyramid's strides and channels;
* a forward pass on two different chest X-ray-like images (drawn in memory by the demo
  generator, or ``--image`` PNG/JPEG/DICOM files), through the classification protocol's
  pixels (resize 256 + pad, centre crop 224, the encoder's upsampling) and, for the pyramid,
  the dense tasks' 224 input: NaN / inf counts, whether the features are constant (identical
  for two different images, or zero variance within an image), mean / std / min / max;
* whether a text side is present and whether the zero-shot tasks apply;
* the feature-cache size every task of the paper suite would need with this encoder.

A refused load (the run would refuse the checkpoint too) is reported with the facts of a
partial load and exit status 2. Constant or non-finite features, a partial load and pyramid
levels that disagree with the declared channels are PROBLEMS: each is a ``WARNING:`` line, and
with ``--strict`` the exit status is 1. The code only uses the :class:`LoadedEncoder` /
:class:`Encoder` interface, so it works for every format and spec source.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from typing import Any

import numpy as np

from .errors import BenchmarkError, CheckpointError

MAX_EXAMPLES = 5
SEGMENTATION_MEMORY_GB_DEFAULT = 4.0  # benchmark/families/segmentation.py MEMORY_BUDGET ($MEDVLP_SEG_MEMORY_GB)

# Images per split (train, val, test) of the real datasets, as the paper suite splits them: the
# committed manifests (tasks/manifests/{chexpert,rsna,siim}.json "counts"; CheXpert's test split
# is the official valid.csv's 202 frontal images, hashed at run time), and MGCA's split table for
# the datasets whose manifests are built from the user's files (tasks/split_recipes.py: COVIDx,
# Object-CXR). tests/test_inspect.py checks them against the committed manifests.
PAPER_SPLIT_SIZES: dict[str, tuple[int, int, int]] = {
    "chexpert": (186_027, 5_000, 202),
    "rsna": (16_010, 5_337, 5_337),
    "covidx": (23_988, 5_998, 400),
    "siim": (8_433, 1_807, 1_807),
    "object_cxr": (6_400, 1_600, 1_000),
}

REPORT_KEYS_SHOWN = {  # load-report keys printed on their own lines (the rest: "format notes")
    "n_expected", "n_loaded", "missing", "unexpected", "mismatched", "head_ignored", "partial", "arch",
    "arch_inferred", "contract_origin", "format_source", "read_with", "n_ignored", "ignored_examples",
    "ignored_by_prefix", "text_side", "prefix", "container", "method_hint",
}  # fmt: skip


# ------------------------------------------------------------------------------ images
@functools.lru_cache(maxsize=2)
def synthetic_images(count: int = 2, size: int = 320) -> tuple[tuple[str, np.ndarray], ...]:
    """``count`` different grey chest radiograph-like images (uint8, read-only), drawn in memory
    by the demo suite's generator (seeds 0, 1, ...; no findings)."""
    from .demo.drawing import draw_radiograph

    images = []
    for seed in range(count):
        pixels = draw_radiograph(np.random.default_rng(seed), size).pixels
        pixels.setflags(write=False)
        images.append((f"synthetic CXR (demo generator, seed {seed})", pixels))
    return tuple(images)


def input_images(paths: list[str] | None) -> list[tuple[str, np.ndarray]]:
    """The user's images (PNG/JPEG/DICOM, read as every task reads them), topped up with
    synthetic ones to two different images."""
    from .images import read_grey

    images = [(str(p), read_grey(p)) for p in (paths or [])]
    if len(images) < 2:
        images += list(synthetic_images(2))[: 2 - len(images)]
    return images


# ------------------------------------------------------------------------------ forward
def _autocast(device):
    import contextlib

    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def classification_batch(images: list[np.ndarray], encoder):
    """(B, 1, 224, 224) in [0, 1] as the linear probes' evaluation view (resize 256 + pad, centre
    crop 224), and the factor the probes upsample it by (fixed-size encoders: their size;
    CNNs: MGCA's 299/224)."""
    import torch

    from .preprocess import PreprocessSpec, preprocess
    from .task_spec import ImageRecipe

    spec = PreprocessSpec()
    batch = torch.stack([preprocess(image, spec, train=False) for image in images])
    size = encoder.contract.input_size
    return batch, (size / spec.crop if size else ImageRecipe().cnn_upsample)


def feature_checks(features) -> dict[str, Any]:
    """NaN / inf counts, constant-feature checks and statistics of (B, D) global features."""
    import torch

    f = features.double()
    finite = torch.isfinite(f)
    out: dict[str, Any] = {
        "shape": list(f.shape),
        "nan": int(torch.isnan(f).sum()),
        "inf": int(torch.isinf(f).sum()),
    }
    values = f[finite]
    out["stats"] = (
        {k: float(getattr(values, k)()) for k in ("mean", "std", "min", "max")} if values.numel() > 1 else None
    )
    if out["nan"] or out["inf"]:
        out.update(identical_across_images=None, zero_variance_images=None, relative_difference=None)
        return out
    scale = float(f.abs().max())
    diff = float((f[0] - f[1]).abs().max()) if f.shape[0] > 1 else float("nan")
    out["relative_difference"] = diff / scale if scale > 0 else 0.0
    # identical up to float rounding: a constant encoder's two outputs differ by nothing
    out["identical_across_images"] = bool(out["relative_difference"] <= 1e-6)
    out["zero_variance_images"] = [i for i in range(f.shape[0]) if float(f[i].std()) <= 1e-12 * max(scale, 1.0)]
    return out


def forward_facts(encoder, images: list[tuple[str, np.ndarray]], device) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from .preprocess import stretch, to_tensor01

    names = [name for name, _ in images]
    batch, upsample = classification_batch([image for _, image in images], encoder)
    with torch.inference_mode():
        x = encoder.prepare(batch.to(device))
        if upsample and upsample != 1.0:
            size = int(round(x.shape[-1] * upsample))
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
        try:
            with _autocast(device):
                features = encoder.forward_global(x).float().cpu()
        except BenchmarkError:
            raise
        except Exception as error:  # noqa: BLE001 - any encoder: a run would fail the same way
            raise BenchmarkError(
                f"{encoder.arch}: the global forward pass on a {list(x.shape)} batch (the linear probes' input) "
                f"failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); a run "
                "would fail the same way"
            ) from error
    facts: dict[str, Any] = {"images": names, "input": list(x.shape), "global": feature_checks(features)}
    if features.dim() != 2 or features.shape[1] != int(encoder.feature_dim):
        facts["global"]["declared_dim_mismatch"] = (
            f"declared feature_dim {encoder.feature_dim}, got {list(features.shape)}"
        )

    size = encoder.contract.input_size or 224
    grey = torch.stack([to_tensor01(stretch(image, size)) for _, image in images]).to(device)
    try:
        with torch.inference_mode(), _autocast(device):
            levels = encoder.forward_pyramid(encoder.prepare(grey))
    except Exception as error:  # noqa: BLE001 - any encoder: report why there is no pyramid
        facts["pyramid"] = {
            "available": False,
            "reason": str(error).splitlines()[0] if str(error) else type(error).__name__,
        }
        return facts
    rows, bad = [], []
    for k, level in enumerate(levels):
        level = level.float()
        row = {
            "shape": list(level.shape[1:]),
            "nan": int(torch.isnan(level).sum()),
            "inf": int(torch.isinf(level).sum()),
        }
        declared_c = encoder.pyramid_channels[k] if k < len(encoder.pyramid_channels) else None
        declared_s = encoder.pyramid_strides[k] if k < len(encoder.pyramid_strides) else None
        if declared_c is not None and level.shape[1] != declared_c:
            bad.append(f"level {k} has {level.shape[1]} channels, declared {declared_c}")
        if declared_s is not None and math.ceil(size / declared_s) != level.shape[-1]:
            bad.append(
                f"level {k} is {level.shape[-1]} wide at input {size}, "
                f"stride {declared_s} declares ~{size // declared_s}"
            )
        rows.append(row)
    if len(levels) != len(encoder.pyramid_channels):
        bad.append(f"{len(levels)} pyramid levels, {len(encoder.pyramid_channels)} declared")
    facts["pyramid"] = {"available": True, "input": size, "levels": rows, "mismatches": bad}
    return facts


# ------------------------------------------------------------------------------ feature cache
def pyramid_values(encoder, size: int, strides: tuple[int, ...] | None, device) -> tuple[int | None, str]:
    """Values per image of the pyramid levels at ``strides`` (all levels when None) at input
    ``size`` (one forward pass of a blank image, as the runner's disk check does), or (None, why)."""
    import torch

    declared = [int(s) for s in encoder.pyramid_strides]
    if not declared:
        return None, "the encoder has no feature pyramid (classification tasks only)"
    if strides is not None and any(s not in declared for s in strides):
        return (
            None,
            f"the task reads the pyramid levels at strides {list(strides)}; the encoder has {declared or 'none'}",
        )
    try:
        with torch.inference_mode():
            levels = encoder.forward_pyramid(encoder.prepare(torch.zeros(1, 1, size, size, device=device)))
    except Exception as error:  # noqa: BLE001 - any encoder: report why there is no pyramid
        return None, str(error).splitlines()[0] if str(error) else type(error).__name__
    chosen = levels if strides is None else [levels[declared.index(s)] for s in strides]
    shapes = [tuple(int(d) for d in level.shape[1:]) for level in chosen]
    return sum(c * h * w for c, h, w in shapes), " + ".join(f"{c}x{h}x{w}" for c, h, w in shapes)


def feature_cache_facts(encoder, train_views: int, device) -> dict[str, Any]:
    """Per task of the paper suite: the bytes of fp16 cached features this encoder needs at 100%
    labels (1% / 10% fill only their images), with the formula and split sizes used."""
    from .registry import all_tasks

    dim = int(getattr(encoder, "feature_dim", 0) or 0)
    seg_gb = float(os.environ.get("MEDVLP_SEG_MEMORY_GB", SEGMENTATION_MEMORY_GB_DEFAULT))
    rows = []
    for task in all_tasks().values():
        n_train, n_val, n_test = PAPER_SPLIT_SIZES[task.dataset]
        row: dict[str, Any] = {"task": task.id, "family": task.family, "images": [n_train, n_val, n_test]}
        if task.family == "classification":
            row["bytes"] = (n_train * train_views + n_val + n_test) * dim * 2
            row["formula"] = (
                f"({n_train:,} train x {train_views} views + {n_val:,} val + {n_test:,} test) x {dim} x 2 B"
            )
        elif task.family == "detection":
            # level i of the recipe is the level at stride 2 ** (i + 1): (2, 3, 4) = strides 8, 16, 32
            strides = tuple(2 ** (i + 1) for i in task.recipe.out_indices)
            values, shapes = pyramid_values(encoder, task.recipe.input_size, strides, device)
            if values is None:
                row.update(bytes=None, formula=f"n/a: {shapes}")
            else:
                total = n_train + n_val + n_test
                row["bytes"] = total * values * 2
                row["formula"] = (
                    f"{total:,} images (train + val + test) x ({shapes} = {values:,} values at "
                    f"{task.recipe.input_size} px) x 2 B"
                )
        elif task.family == "segmentation":
            values, shapes = pyramid_values(encoder, task.recipe.input_size, None, device)
            if values is None:
                row.update(bytes=None, formula=f"n/a: {shapes}")
            else:
                row["bytes"] = (n_val + n_test) * values * 2
                row["formula"] = (
                    f"({n_val:,} val + {n_test:,} test) x ({shapes} = {values:,} values at "
                    f"{task.recipe.input_size} px) x 2 B; training images are encoded afresh (augmented); "
                    f"a split's pyramids stay in memory up to {seg_gb:g} GiB ($MEDVLP_SEG_MEMORY_GB), "
                    "larger ones go to the disk cache"
                )
        else:
            row.update(bytes=0, formula="none: zero-shot features are not cached")
        rows.append(row)
    return {
        "suite": "paper",
        "train_views": train_views,
        "feature_dim": dim,
        "split_sizes": "real datasets: committed manifests (CheXpert, RSNA, SIIM) and MGCA's split table (COVIDx, "
        "Object-CXR)",
        "tasks": rows,
        "total_bytes": sum(r["bytes"] or 0 for r in rows),
    }


# ------------------------------------------------------------------------------ the report
def _examples(keys: list, n: int = MAX_EXAMPLES) -> list:
    return list(keys[:n])


def load_facts(loaded, refused: str | None, user_arch: str | None = None) -> dict[str, Any]:
    from models.formats import FORMATS, SOURCES

    report = dict(loaded.load_report)
    enc = loaded.encoder
    fmt = FORMATS.get(loaded.format) or SOURCES.get(loaded.format)
    n_expected = report.get("n_expected")
    mismatched = report.get("mismatched") or []
    head = report.get("head_ignored") or []
    if user_arch is not None:
        arch_origin = "--arch"
    elif report.get("arch_inferred") is True:
        arch_origin = "inferred from the tensors"
    elif report.get("arch_inferred") is False:
        arch_origin = "named by the format"
    else:
        arch_origin = "named by the spec" if loaded.format in SOURCES else "carried by the checkpoint"
    return {
        "spec": loaded.spec,
        "format": loaded.format,
        "format_description": getattr(fmt, "description", ""),
        "format_source": report.get("format_source") or getattr(fmt, "source", "") or None,
        "method_hint": loaded.method_hint,
        "sha256": loaded.sha256,
        "architecture": {"name": enc.arch, "class": type(enc).__name__, "origin": arch_origin},
        "load": {
            "status": "refused" if refused else ("partial" if report.get("partial") else "ok"),
            "error": refused,
            "prefix": report.get("prefix"),
            "container": report.get("container"),
            "read_with": report.get("read_with"),
            "n_expected": n_expected,
            "n_loaded": report.get("n_loaded"),
            "missing": {"count": len(report.get("missing") or []), "examples": _examples(report.get("missing") or [])},
            "unexpected": {
                "count": len(report.get("unexpected") or []),
                "examples": _examples(report.get("unexpected") or []),
            },
            "wrong_shape": {"count": len(mismatched), "examples": _examples(mismatched)},
            "ignored": {
                "count": int(report.get("n_ignored") or 0) + len(head),
                "outside_backbone": int(report.get("n_ignored") or 0),
                "head": len(head),
                "examples": _examples(list(report.get("ignored_examples") or []) + list(head)),
                "by_prefix": report.get("ignored_by_prefix"),
            },
        },
        "contract": {**enc.contract.to_dict(), "origin": report.get("contract_origin") or "architecture default"},
        "features": {
            "global_dim": int(enc.feature_dim),
            "pyramid_strides": [int(s) for s in enc.pyramid_strides],
            "pyramid_channels": [int(c) for c in enc.pyramid_channels],
        },
        "format_notes": {
            k: v for k, v in report.items() if k not in REPORT_KEYS_SHOWN and isinstance(v, (str, int, float, bool))
        },
    }


def text_side_facts(loaded) -> dict[str, Any]:
    """The format's description of a text tower in the file, and whether the zero-shot tasks
    (benchmark/zeroshot/text_side.py, the gate a run uses) can read it."""
    from .zeroshot.text_side import TEXT_PREFIX, applicability

    described = loaded.load_report.get("text_side")
    reason = applicability(loaded)
    if reason is not None and described:
        reason = f"the zero-shot tasks read the {', '.join(TEXT_PREFIX)} text-tower layouts only"
    return {
        "in_checkpoint": described,
        "zero_shot_applicable": reason is None,
        "reason": reason,
    }


def problems_of(facts: dict[str, Any]) -> list[str]:
    out = []
    load = facts["load"]
    if load["status"] == "refused":
        out.append(f"LOAD REFUSED: a run would refuse this checkpoint ({load['error'].splitlines()[0]})")
    elif load["status"] == "partial":
        out.append(
            f"PARTIAL LOAD: {load['missing']['count']} backbone tensors missing (left at random init), "
            f"{load['unexpected']['count']} unexpected, {load['wrong_shape']['count']} with the wrong shape"
        )
    g = facts["forward"]["global"]
    if g["nan"] or g["inf"]:
        out.append(f"NON-FINITE FEATURES: {g['nan']} NaN and {g['inf']} inf values in the global features")
    if g.get("identical_across_images"):
        out.append(
            "CONSTANT FEATURES: two different images give the same global features "
            f"(max |a - b| / max |a| = {g['relative_difference']:.3g})"
        )
    if g.get("zero_variance_images"):
        out.append(
            f"CONSTANT FEATURES: zero variance across the feature dimensions for image(s) {g['zero_variance_images']}"
        )
    if g.get("declared_dim_mismatch"):
        out.append(f"FEATURE SIZE: {g['declared_dim_mismatch']}")
    pyramid = facts["forward"].get("pyramid", {})
    for k, level in enumerate(pyramid.get("levels", [])):
        if level["nan"] or level["inf"]:
            out.append(f"NON-FINITE PYRAMID: level {k} has {level['nan']} NaN and {level['inf']} inf values")
    out += [f"PYRAMID: {m}" for m in pyramid.get("mismatches", [])]
    return out


def inspect(
    spec: str,
    *,
    arch: str | None = None,
    allow_partial: bool = False,
    trust_pickle: bool = False,
    input_contract: str | None = None,
    images: list[str] | None = None,
    train_views: int = 4,
    device: str = "cpu",
) -> dict[str, Any]:
    """The facts about ``spec`` (see the module docstring) as a JSON-ready dict."""
    from models.loading import load_encoder

    from .cli import resolve_device

    torch_device = resolve_device(device)
    refused = None
    from models.encoder import parse_contract

    contract = parse_contract(input_contract) if input_contract else None
    kwargs = dict(arch=arch, trust_pickle=trust_pickle, input_contract=contract)
    try:
        loaded = load_encoder(spec, allow_partial=allow_partial, **kwargs)
    except CheckpointError as error:
        if allow_partial:
            raise
        refused = str(error)
        try:  # what a partial load would give, so the report can show what is missing
            loaded = load_encoder(spec, allow_partial=True, **kwargs)
        except BenchmarkError:
            raise error from None
    loaded.encoder.to(torch_device).eval()
    facts = load_facts(loaded, refused, arch)
    facts["forward"] = forward_facts(loaded.encoder, input_images(images), torch_device)
    facts["text_side"] = text_side_facts(loaded)
    facts["feature_cache"] = feature_cache_facts(loaded.encoder, train_views, torch_device)
    facts["problems"] = problems_of(facts)
    return facts


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


def _count_line(what: dict, name: str) -> str:
    shown = f" (e.g. {', '.join(map(str, what['examples']))})" if what["count"] else ""
    return f"{what['count']} {name}{shown}"


def render(facts: dict[str, Any]) -> str:
    """The facts as the human-readable report ``inspect`` prints."""
    load, contract, feats, fwd = facts["load"], facts["contract"], facts["features"], facts["forward"]
    lines = [f"encoder:       {facts['spec']}"]
    lines.append(
        f"format:        {facts['format']}"
        + (f" - {facts['format_description']}" if facts["format_description"] else "")
    )
    lines.append(f"  follows:     {facts['format_source'] or 'not recorded by the format'}")
    lines.append(f"  method hint: {facts['method_hint'] or 'none'}")
    if load["prefix"]:
        lines.append(
            f"  prefix:      {load['prefix']}" + (f" (under {load['container']!r})" if load["container"] else "")
        )
    lines.append(f"  sha256:      {facts['sha256']}")
    a = facts["architecture"]
    lines.append(f"architecture:  {a['name']} ({a['class']}; {a['origin']})")
    if load["n_loaded"] is None:
        lines.append("tensors:       n/a (the module carries its own weights)")
    elif not load["n_expected"]:
        lines.append("tensors:       none loaded (no checkpoint: the spec builds the weights)")
    else:
        lines.append(
            f"tensors:       loaded {load['n_loaded']} of {load['n_expected']} backbone tensors; load {load['status']}"
        )
        lines.append("               " + "; ".join(
            _count_line(load[k], name) for k, name in (("missing", "missing"), ("unexpected", "unexpected"),
                                                        ("wrong_shape", "with the wrong shape"))))  # fmt: skip
        ign = load["ignored"]
        by = ign["by_prefix"]
        detail = f" by prefix {', '.join(f'{p}: {n}' for p, n in by.items())};" if by else ""
        lines.append(
            f"               ignored {ign['count']} ({ign['outside_backbone']} outside the backbone,{detail} "
            f"{ign['head']} classifier head)" + (f", e.g. {', '.join(ign['examples'])}" if ign["examples"] else "")
        )
    for key, value in facts["format_notes"].items():
        lines.append(f"  {key}: {value}")
    size = f"{contract['input_size']}x{contract['input_size']} only" if contract["input_size"] else "any size"
    lines.append(
        f"input:         mean {contract['mean']} std {contract['std']}, {contract['channels']} channel(s), {size}"
    )
    lines.append(f"  from:        {contract['origin']}")
    lines.append(
        f"features:      global {feats['global_dim']}-d; pyramid strides {feats['pyramid_strides'] or 'none'}, "
        f"channels {feats['pyramid_channels'] or 'none'}"
    )
    g = fwd["global"]
    lines.append(f"forward:       {len(fwd['images'])} images: {'; '.join(fwd['images'])}")
    lines.append(f"  global:      input {fwd['input']} -> {g['shape']}; NaN {g['nan']}, inf {g['inf']}")
    if g["stats"]:
        s = g["stats"]
        lines.append(f"  stats:       mean {s['mean']:.6g}, std {s['std']:.6g}, min {s['min']:.6g}, max {s['max']:.6g}")
    if g.get("relative_difference") is not None:
        lines.append(
            f"  constant:    {'YES' if g['identical_across_images'] or g['zero_variance_images'] else 'no'} "
            f"(max |a - b| / max |a| between the two images = {g['relative_difference']:.3g}; zero-variance images "
            f"{g['zero_variance_images'] or 'none'})"
        )
    p = fwd.get("pyramid", {})
    if p.get("available"):
        shapes = ", ".join("x".join(map(str, lv["shape"])) for lv in p["levels"])
        nonfinite = sum(lv["nan"] + lv["inf"] for lv in p["levels"])
        lines.append(f"  pyramid:     at {p['input']} px: {shapes}; non-finite values {nonfinite}")
    else:
        lines.append(f"  pyramid:     none ({p.get('reason', '')}): classification tasks only")
    t = facts["text_side"]
    lines.append(f"text side:     {t['in_checkpoint'] or 'none described by the format'}")
    lines.append("  zero-shot:   " + ("applicable" if t["zero_shot_applicable"] else f"not applicable ({t['reason']})"))
    fc = facts["feature_cache"]
    lines.append(
        f"feature cache: paper suite, {fc['train_views']} cached views per training image, fp16; "
        f"{fc['split_sizes']}; total {_size(fc['total_bytes'])}"
    )
    width = max(len(r["task"]) for r in fc["tasks"])
    for r in fc["tasks"]:
        lines.append(f"  {r['task']:<{width}}  {_size(r['bytes']):>9}  {r['formula']}")
    if facts["problems"]:
        lines += [f"WARNING: {p}" for p in facts["problems"]]
    else:
        lines.append("verdict:       OK (loads, finite and non-constant features)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from .cli import ENCODER_HELP, OptionParser, int_option

    parser = OptionParser(
        prog="run_benchmark.py inspect",
        description="Load an encoder as a run would and report what the harness makes of it: format, architecture, "
        "tensors, input contract, features on two X-ray-like images (NaN / constant checks), text side and "
        "feature-cache sizes. Exit status: 0 fine, 1 problems found with --strict, 2 the load is refused.",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--encoder", metavar="SPEC", required=True, help=ENCODER_HELP)
    parser.add_argument("--arch", help="architecture to build instead of the inferred one")
    parser.add_argument(
        "--image",
        action="append",
        metavar="PATH",
        help="a PNG/JPEG/DICOM image to run the encoder on (repeatable; topped up with synthetic\n"
        "chest X-ray-like images to two different images)",
    )
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a problem is found (constant/NaN features ...)"
    )
    parser.add_argument("--allow-partial-load", action="store_true", help="as for a run: load despite missing tensors")
    parser.add_argument("--trust-checkpoint", action="store_true", help="as for a run: allow full unpickling")
    parser.add_argument(
        "--input-contract", metavar="PRESET|JSON", help="as for a run: the input normalisation (preset or JSON)"
    )
    parser.add_argument(
        "--train-views", type=int_option(1), default=4, help="cached views per training image (default 4, as a run)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, or auto")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    facts = inspect(
        args.encoder,
        arch=args.arch,
        allow_partial=args.allow_partial_load,
        trust_pickle=args.trust_checkpoint,
        input_contract=args.input_contract,
        images=args.image,
        train_views=args.train_views,
        device=args.device,
    )
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
        for problem in facts["problems"]:
            print(f"WARNING: {problem}", file=sys.stderr)
    else:
        print(render(facts))
    if facts["load"]["status"] == "refused":
        print(f"error: {facts['load']['error']}", file=sys.stderr)
        return 2
    return 1 if (args.strict and facts["problems"]) else 0


__all__ = ["PAPER_SPLIT_SIZES", "inspect", "main", "render"]


if __name__ == "__main__":  # pragma: no cover - use run_benchmark.py inspect
    sys.exit(main(sys.argv[1:]))
