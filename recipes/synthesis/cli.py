"""``python -m recipes.synthesis {generate,merge,quality} --help``."""

from __future__ import annotations

import argparse
import sys

from benchmark.errors import BenchmarkError

from .generate import PRESETS, SCHEDULERS


def _generate_parser(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="one synthetic image per frontal MIMIC-CXR image/report pair",
        description="Generate one synthetic image per pair of the pretraining pair set (frontal MIMIC-CXR-JPG images "
        "whose MGCA caption has >= 3 tokens; prompt: the IMPRESSION, or IMPRESSION + FINDINGS when the impression has "
        "< 3 tokens), into a data root in the MIMIC-CXR-JPG layout (resumable, shardable). Multi-GPU: torchrun "
        "--nproc-per-node=N -m recipes.synthesis generate ... (ranks shard the work).",
    )
    p.add_argument(
        "--data-root", required=True, help="folder holding mimic-cxr-jpg/2.0.0 and mimic-cxr/2.0.0 (reports)"
    )
    p.add_argument(
        "--model",
        required=True,
        help="local diffusers StableDiffusionPipeline directory (SD 2.1 snapshot or RoentGen); never downloaded",
    )
    p.add_argument(
        "--output", required=True, help="output data root (gets mimic-cxr-jpg/2.0.0/..., manifests, SYNTHESIS.json)"
    )
    p.add_argument(
        "--preset",
        default="sd21",
        choices=sorted(PRESETS),
        help="sd21: 512x512, 50 steps, guidance 7.5, the snapshot's scheduler; roentgen: 512x512, 75 steps, guidance "
        "4, PNDM",
    )
    p.add_argument(
        "--steps", type=int, help="sampling steps (overrides the preset; the synthetic-data paper used 50 for both)"
    )
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (overrides the preset)")
    p.add_argument("--height", type=int, help="image height in pixels, multiple of 8 (overrides the preset)")
    p.add_argument("--width", type=int, help="image width in pixels, multiple of 8 (overrides the preset)")
    p.add_argument(
        "--scheduler",
        choices=["default", *SCHEDULERS],
        help="sampler (overrides the preset; default = the one saved with the model)",
    )
    p.add_argument("--seed", type=int, default=42, help="base seed (default 42)")
    p.add_argument(
        "--seed-mode",
        default="fixed",
        choices=["fixed", "per-report"],
        help="fixed: the same seed for every image (the paper); per-report: seed derived from the dicom_id",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="images per pipeline call (default 8); the pairs are cut into global batches of this size, so keep it "
        "the same for every shard and resumption of one dataset (fp16 GPU kernels are not batch-invariant)",
    )
    p.add_argument(
        "--dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"], help="auto: fp16 on CUDA, fp32 on the CPU"
    )
    p.add_argument(
        "--device", default="auto", help="auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda:1, ..."
    )
    p.add_argument(
        "--shard",
        help="I/N: generate shard I (0-based) of N, e.g. for a Slurm array; composes with torchrun/accelerate ranks",
    )
    p.add_argument("--limit", type=int, help="smoke runs: only the first N pairs (by subject, study, dicom id)")
    p.add_argument("--splits", help="comma-separated official splits to keep (train,validate,test); default all")
    p.add_argument(
        "--reports",
        default="symlink",
        choices=["symlink", "copy", "none"],
        help="how OUT/mimic-cxr/2.0.0/files gets the real reports: symlink to the data root's (default), copy, or none",
    )
    p.add_argument(
        "--generator-name", help="name recorded in the manifest's generator column (default: the model folder's name)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="regenerate images whose manifest row has other settings (default: refuse)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _merge_parser(sub) -> None:
    p = sub.add_parser(
        "merge",
        help="re-merge shard manifests and rewrite the csv.gz files (done automatically by each shard)",
        description="Merge OUT/synthesis_manifest.*-of-*.csv into OUT/synthesis_manifest.csv and rewrite the "
        "MIMIC-CXR-JPG csv.gz files for the generated images.",
    )
    p.add_argument("--data-root", required=True, help="the real data root the images were generated from")
    p.add_argument("--output", required=True, help="the synthetic data root")
    p.add_argument("--reports", default="symlink", choices=["symlink", "copy", "none"], help="as for generate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recipes.synthesis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _generate_parser(sub)
    _merge_parser(sub)
    from .quality import add_parser as quality_parser

    quality_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "generate":
            from .generate import config_from_args, generate

            generate(config_from_args(args))
        elif args.command == "merge":
            from pathlib import Path

            from .generate import finalize

            merged = finalize(Path(args.output), Path(args.data_root), reports=args.reports)
            print(f"[synthesis] merged {len(merged)} images into {Path(args.output) / 'synthesis_manifest.csv'}")
        else:
            from .quality import run_from_args

            run_from_args(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished images are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
    return 0
