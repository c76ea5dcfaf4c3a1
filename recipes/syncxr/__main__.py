"""``python -m recipes.syncxr {entities,sample,reports,images,curate,build,merge,run} --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import BenchmarkError, ConfigError

STEPS = ("entities", "sample", "reports", "images", "curate", "build")


def _work(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", required=True, type=Path, help="the recipe's work folder (one sub-folder per step)")


def _shard(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        help="I/N: do shard I (0-based) of N of this step's batches, e.g. a Slurm array; composes with torchrun ranks",
    )
    p.add_argument("--overwrite", action="store_true", help="redo batches made with other settings (default: refuse)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda:1")
    p.add_argument(
        "--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="auto: bf16 on CUDA, fp32 on the CPU"
    )


def add_entities(p: argparse.ArgumentParser, standalone: bool = True) -> None:
    if standalone:
        p.add_argument("--data-root", required=True, type=Path, help="folder holding mimic-cxr-jpg/ and mimic-cxr/")
        _work(p)
        _shard(p)
    p.add_argument("--lexicon", default=None, help="lexicon folder (default: recipes/syncxr/lexicon)")
    p.add_argument("--chunk-size", type=int, default=2000, help="reports per batch file (default 2000)")


def add_sample(p: argparse.ArgumentParser, standalone: bool = True) -> None:
    from .sampling import DEFAULT_RANGES, DEFAULT_USAGE_RATIO, WEIGHTINGS

    if standalone:
        _work(p)
        p.add_argument("--overwrite", action="store_true", help="redo a sampling made with other settings")
    p.add_argument("--count", type=int, required=True, help="entity sets = synthetic reports to write")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the entity sets and the synthetic ids (0)")
    p.add_argument(
        "--usage-ratio",
        type=float,
        default=DEFAULT_USAGE_RATIO,
        help=f"no entity in more than this share of the sets (default {DEFAULT_USAGE_RATIO}; 1 = no cap)",
    )
    p.add_argument(
        "--entities-per-report",
        default=None,
        help="CATEGORY=LO-HI,... entities drawn per set (default "
        + ",".join(f"{c}={lo}-{hi}" for c, (lo, hi) in DEFAULT_RANGES.items())
        + ")",
    )
    p.add_argument(
        "--weighting",
        default="balanced",
        choices=WEIGHTINGS,
        help="balanced: eligible entities equally likely (default); frequency: as often as in the real reports",
    )
    p.add_argument("--min-reports", type=int, default=1, help="an entity enters the pool from this many reports (1)")
    p.add_argument("--valid-fraction", type=float, default=0.05, help="share of pairs in the validate split (0.05)")


def add_reports(p: argparse.ArgumentParser, standalone: bool = True) -> None:
    from .reports import DEFAULT_SAMPLING

    if standalone:
        _work(p)
        _shard(p)
        _device(p)
        p.add_argument("--lexicon", default=None, help="lexicon folder (default: recipes/syncxr/lexicon)")
    p.add_argument("--llm", required=True, type=Path, help="local transformers causal LM folder (never downloaded)")
    p.add_argument(
        "--llm-batch-size",
        type=int,
        default=8,
        help="reports per generate call (default 8); keep it fixed for one work folder (batches are the unit of "
        "determinism)",
    )
    p.add_argument("--max-attempts", type=int, default=3, help="generations per section before the fallback (3)")
    p.add_argument("--report-seed", type=int, default=0, help="seed of the report sampling (0)")
    p.add_argument("--temperature", type=float, default=DEFAULT_SAMPLING["temperature"], help="0 = greedy (0.7)")
    p.add_argument("--top-p", type=float, default=DEFAULT_SAMPLING["top_p"], help="nucleus sampling (0.9)")
    p.add_argument(
        "--max-new-tokens-findings", type=int, default=DEFAULT_SAMPLING["max_new_tokens"]["findings"], help="(256)"
    )
    p.add_argument(
        "--max-new-tokens-impression", type=int, default=DEFAULT_SAMPLING["max_new_tokens"]["impression"], help="(128)"
    )


def add_images(p: argparse.ArgumentParser, standalone: bool = True) -> None:
    from recipes.synthesis.generate import PRESETS, SCHEDULERS

    from .images import STUDY_STEPS

    if standalone:
        _work(p)
        _shard(p)
        _device(p)
        p.add_argument("--lexicon", default=None, help="lexicon folder (default: recipes/syncxr/lexicon)")
    p.add_argument("--image-model", required=True, type=Path, help="local diffusers pipeline folder (RoentGen / SD)")
    p.add_argument("--preset", default="roentgen", choices=sorted(PRESETS), help="synthesis preset (roentgen)")
    p.add_argument("--steps", type=int, default=STUDY_STEPS, help=f"sampling steps (default {STUDY_STEPS})")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the preset's)")
    p.add_argument("--height", type=int, help="image height (default: the preset's)")
    p.add_argument("--width", type=int, help="image width (default: the preset's)")
    p.add_argument("--scheduler", choices=["default", *SCHEDULERS], help="sampler (default: the preset's)")
    p.add_argument("--image-seed", type=int, default=42, help="base seed of the images (42)")
    p.add_argument(
        "--seed-mode", default="per-report", choices=["fixed", "per-report"], help="per-report (default) or fixed"
    )
    p.add_argument("--image-batch-size", type=int, default=8, help="images per pipeline call (8); keep it fixed")
    p.add_argument("--generator-name", help="name recorded for the image generator (default: the folder's name)")
    if not standalone:
        p.add_argument(
            "--image-dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"], help="auto: fp16 on CUDA"
        )


def add_curate(p: argparse.ArgumentParser, standalone: bool = True) -> None:
    from .curation import DEFAULT_THRESHOLD

    if standalone:
        _work(p)
        _shard(p)
        _device(p)
    p.add_argument("--mllm", required=True, type=Path, help="local transformers image-text-to-text model folder")
    p.add_argument(
        "--keep-threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"keep an image when p(yes) >= this (default {DEFAULT_THRESHOLD})",
    )
    p.add_argument("--curate-batch-size", type=int, default=8, help="images per model call (8)")


def add_build(p: argparse.ArgumentParser, standalone: bool = True) -> None:
    from .root import LINK_MODES

    if standalone:
        _work(p)
        p.add_argument("--overwrite", action="store_true", help="rebuild a root built with other settings")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--lexicon", default=None, help="lexicon folder (default: recipes/syncxr/lexicon)")
    p.add_argument("--output", required=True, type=Path, help="the SynCXR data root to write")
    p.add_argument("--mix-real", type=Path, help="mixed mode: a real MIMIC-CXR data root whose pairs are mixed in")
    p.add_argument("--synthetic-ratio", type=float, help="mixed mode: share of synthetic pairs (0-1)")
    p.add_argument("--mix-total", type=int, help="mixed mode: pairs in all (default: the most both pools allow)")
    p.add_argument("--mix-seed", type=int, default=0, help="mixed mode: seed of the pair draws (0)")
    p.add_argument("--link", default="hardlink", choices=LINK_MODES, help="synthetic images: hardlink (default)")
    p.add_argument("--real-link", default="symlink", choices=LINK_MODES, help="real images/reports: symlink (default)")


def package_doc() -> str:
    from recipes import syncxr

    return syncxr.__doc__ or ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recipes.syncxr",
        description=package_doc(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_entities(sub.add_parser("entities", help="1. entities of the real reports and their frequencies"))
    add_sample(sub.add_parser("sample", help="2. balanced entity sets with the usage-ratio cap (+ plots)"))
    add_reports(sub.add_parser("reports", help="3. FINDINGS + IMPRESSION per set with a local causal LM"))
    add_images(sub.add_parser("images", help="4a. one image per synthetic IMPRESSION (the synthesis recipe)"))
    add_curate(sub.add_parser("curate", help="4b. keep or discard each image with a local multimodal model"))
    add_build(sub.add_parser("build", help="5. the MIMIC-CXR-layout data root of the kept pairs (or mixed)"))
    merge = sub.add_parser("merge", help="join the finished shards of a step (done automatically by the last shard)")
    _work(merge)
    merge.add_argument("--step", required=True, choices=["entities", "reports", "curate"], help="the step to merge")
    merge.add_argument("--lexicon", default=None, help="entities: the lexicon folder the batches were made with")
    run = sub.add_parser(
        "run",
        help="every step in order, in one process (one machine; use the step commands with --shard on a cluster)",
    )
    run.add_argument("--data-root", required=True, type=Path, help="folder holding mimic-cxr-jpg/ and mimic-cxr/")
    _work(run)
    _device(run)
    run.add_argument("--overwrite", action="store_true", help="redo work made with other settings")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_entities(run, standalone=False)
    add_sample(run, standalone=False)
    add_reports(run, standalone=False)
    add_images(run, standalone=False)
    add_curate(run, standalone=False)
    add_build(run, standalone=False)
    return parser


# ------------------------------------------------------------------------------ step configs
def entities_config(a):
    from .entities import EntitiesConfig

    return EntitiesConfig(
        data_root=a.data_root,
        work=a.work,
        lexicon=a.lexicon,
        chunk_size=a.chunk_size,
        shard=getattr(a, "shard", None),
        overwrite=a.overwrite,
        progress=not a.no_progress,
    )


def sample_config(a):
    from .sampling import SamplingConfig, parse_ranges

    return SamplingConfig(
        work=a.work,
        count=a.count,
        seed=a.sample_seed,
        usage_ratio=a.usage_ratio,
        ranges=parse_ranges(a.entities_per_report),
        weighting=a.weighting,
        min_reports=a.min_reports,
        valid_fraction=a.valid_fraction,
        overwrite=a.overwrite,
    )


def reports_config(a):
    from .reports import ReportsConfig

    return ReportsConfig(
        work=a.work,
        llm=a.llm,
        batch_size=a.llm_batch_size,
        max_attempts=a.max_attempts,
        seed=a.report_seed,
        temperature=a.temperature,
        top_p=a.top_p,
        max_new_tokens_findings=a.max_new_tokens_findings,
        max_new_tokens_impression=a.max_new_tokens_impression,
        device=a.device,
        dtype=a.dtype,
        lexicon=a.lexicon,
        shard=getattr(a, "shard", None),
        overwrite=a.overwrite,
        progress=not a.no_progress,
    )


def images_config(a):
    from .images import ImagesConfig

    return ImagesConfig(
        work=a.work,
        model=a.image_model,
        preset=a.preset,
        steps=a.steps,
        guidance=a.guidance,
        height=a.height,
        width=a.width,
        scheduler=a.scheduler,
        seed=a.image_seed,
        seed_mode=a.seed_mode,
        batch_size=a.image_batch_size,
        dtype=getattr(a, "image_dtype", None) or a.dtype,
        device=a.device,
        shard=getattr(a, "shard", None),
        generator_name=a.generator_name,
        lexicon=a.lexicon,
        overwrite=a.overwrite,
        progress=not a.no_progress,
    )


def curate_config(a):
    from .curation import CurationConfig

    return CurationConfig(
        work=a.work,
        mllm=a.mllm,
        threshold=a.keep_threshold,
        batch_size=a.curate_batch_size,
        device=a.device,
        dtype=a.dtype,
        shard=getattr(a, "shard", None),
        overwrite=a.overwrite,
        progress=not a.no_progress,
    )


def build_config(a):
    from .root import BuildConfig

    return BuildConfig(
        work=a.work,
        output=a.output,
        mix_real=a.mix_real,
        synthetic_ratio=a.synthetic_ratio,
        mix_total=a.mix_total,
        mix_seed=a.mix_seed,
        link=a.link,
        real_link=a.real_link,
        lexicon=a.lexicon,
        overwrite=a.overwrite,
        progress=not a.no_progress,
    )


def run_all(a) -> None:
    from recipes.synthesis.generate import launcher_rank

    from . import curation, entities, images, reports, root, sampling

    if launcher_rank()[1] > 1:
        raise ConfigError(
            "`run` chains the steps in one process; under torchrun (WORLD_SIZE > 1) run each step command instead "
            "(they shard over the ranks and merge when the last one finishes)"
        )
    if entities.run(entities_config(a)) is None:
        raise BenchmarkError("entities: not every chunk was extracted")
    sampling.run(sample_config(a))
    if reports.run(reports_config(a)) is None:
        raise BenchmarkError("reports: not every batch was written")
    images.run(images_config(a))
    if curation.run(curate_config(a)) is None:
        raise BenchmarkError("curate: not every batch was judged")
    root.run(build_config(a))


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if a.command == "entities":
            from .entities import run

            run(entities_config(a))
        elif a.command == "sample":
            from .sampling import run

            run(sample_config(a))
        elif a.command == "reports":
            from .reports import run

            run(reports_config(a))
        elif a.command == "images":
            from .images import run

            run(images_config(a))
        elif a.command == "curate":
            from .curation import run

            run(curate_config(a))
        elif a.command == "build":
            from .root import run

            run(build_config(a))
        elif a.command == "merge":
            from . import curation, entities, reports

            if a.step == "entities":
                done = entities.merge(a.work, lexicon=a.lexicon)
            else:
                done = (reports if a.step == "reports" else curation).merge(a.work)
            if done is None:
                return 1
        else:
            run_all(a)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished batches are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
