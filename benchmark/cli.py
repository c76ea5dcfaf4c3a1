"""Command line: ``python run_benchmark.py --encoder SPEC [options]``.

Scores a frozen image encoder on the downstream suite and prints a task x label-fraction
table. Errors a user can fix (missing data, a checkpoint that does not fit, a bad option)
are printed as one clear message with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

from tabulate import tabulate

from . import __version__
from .errors import BenchmarkError

ENCODER_HELP = """encoder to score. One of:
  PATH.pt/.pth/.ckpt/.safetensors  a checkpoint; the format is auto-detected: torchvision
      ResNet state dict; Lightning checkpoints of MGCA (img_encoder_q.model.), ConVIRT
      (img_encoder.model.), GLoRIA (gloria.img_encoder.model.), BenchX (visual.model.),
      M-FLAG (encoder.), G2D (backbone.); BioViL image models (encoder.encoder.), MedKLIP and
      KAD checkpoints (res_features.N); OpenAI CLIP / CheXzero (visual.*), open_clip timm towers
      such as BiomedCLIP (visual.trunk.*), MRM, REFERS, PTUnifier, MedCLIP (ResNet-50, Swin);
      timm ViT state dicts; TorchScript modules
  DIR                  a Hugging Face model folder (config.json + weights): ViT, DINOv2, Swin, CLIP
  random:ARCH[@SEED]   seeded random initialisation (the papers' "Random Init" row)
  imagenet:ARCH        torchvision ImageNet weights, from the local torch hub cache only
  MODULE:FUNCTION      a Python factory returning an encoder"""


class OptionParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``error: argument --limit: ...``) with
    exit status 2, like every other user error, instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def int_option(minimum: int, meaning: str = ""):
    """argparse ``type=``: an integer >= ``minimum``; argparse names the option in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects an integer >= {minimum}{meaning}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}{meaning}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def int_list_option(minimum: int, maximum: int | None = None):
    """argparse ``type=``: comma-separated distinct integers in [minimum, maximum]; returns
    the text unchanged (parsed later by :func:`parse_int_list`)."""
    allowed = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"

    def parse(text: str) -> str:
        parts = [t.strip() for t in text.split(",") if t.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expects comma-separated integers {allowed}, got {text!r}")
        values = []
        for part in parts:
            try:
                value = int(part)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expects comma-separated integers {allowed}, got {part!r} in {text!r}"
                ) from None
            if value < minimum or (maximum is not None and value > maximum):
                raise argparse.ArgumentTypeError(f"values must be integers {allowed}, got {value}")
            if value in values:
                raise argparse.ArgumentTypeError(f"lists {value} twice (each value runs once)")
            values.append(value)
        return text

    parse.__name__ = "integer list"
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = OptionParser(
        prog="run_benchmark.py",
        description="medvlp-bench: score a frozen chest X-ray image encoder on the MGCA downstream suite "
        "at 1/10/100% of the labels: linear-probe classification (CheXpert, RSNA Pneumonia, COVIDx), U-Net\n"
        "segmentation (SIIM-ACR, RSNA), YOLOv3 detection (RSNA, Object-CXR), plus zero-shot classification and\n"
        "grounding for checkpoints with a text side.",
        formatter_class=argparse.RawTextHelpFormatter,
        epilog="subcommands:\n  run_benchmark.py leaderboard            regenerate leaderboards/ from submissions/\n"
        "  run_benchmark.py validate-submission DIR  check a submission folder\n"
        "  run_benchmark.py inspect --encoder SPEC   what the harness makes of an encoder (format, tensors,\n"
        "                                             contract, NaN/constant features, cache sizes)\n"
        "  run_benchmark.py export --format hf OUT   every unit of every submission as a Hugging Face dataset",
    )
    what = parser.add_argument_group("what to run")
    what.add_argument("--encoder", metavar="SPEC", help=ENCODER_HELP)
    what.add_argument(
        "--suite",
        choices=("paper", "demo"),
        default="paper",
        help="paper: the official datasets under the data root (default).\n"
        "demo: the built-in SMOKE suite of synthetic images in the official layouts,\n"
        "generated on first use; its numbers are not comparable with published ones.",
    )
    what.add_argument(
        "--tasks", default="all", help="comma-separated task ids or families (see --list-tasks); default: all"
    )
    what.add_argument(
        "--fractions",
        default=None,
        type=int_list_option(1, 100),
        help="label fractions in percent, e.g. 1,10,100 (default: each task's)",
    )
    what.add_argument(
        "--seeds",
        default=None,
        type=int_list_option(0),
        help="comma-separated seeds (default: 0,1,2 for the paper suite, 0 for demo)",
    )
    what.add_argument(
        "--list-tasks",
        action="store_true",
        help="list every task with its family, dataset, metric and whether its data is present",
    )

    data = parser.add_argument_group("data and outputs")
    data.add_argument(
        "--data-root",
        metavar="DIR",
        help="folder holding the datasets' official folders\n(else $MEDVLP_DATA_ROOT, else data_root in "
        "./medvlp-bench.toml or ~/.config/medvlp-bench/config.toml)",
    )
    data.add_argument(
        "--chexpert-release",
        choices=("auto", "full", "small"),
        default="auto",
        help="which CheXpert release to read when the data root holds both (recorded in every CheXpert result):\n"
        "full = CheXpert-v1.0 (full resolution, what the reference MGCA code used), small = CheXpert-v1.0-small;\n"
        "auto (default): full when present, else small. full/small stop with an error when that release is absent",
    )
    data.add_argument(
        "--demo-root", metavar="DIR", help="where the demo suite is generated (default: <cache-dir>/demo-suite)"
    )
    data.add_argument("--output", metavar="DIR", help="results folder (default: results/<suite>/<encoder name>)")
    data.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="feature cache and locally built manifests (default: $MEDVLP_CACHE or ~/.cache/medvlp-bench)",
    )
    data.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute units whose result files exist (default: finished units are skipped)",
    )
    data.add_argument(
        "--shard",
        metavar="I/N",
        help="run only shard I of N (0-based) of the task x fraction x seed grid, e.g. a Slurm array:\n"
        "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT",
    )
    data.add_argument(
        "--submission",
        metavar="NAME",
        help="write results into submissions/NAME/ (plus a metadata file to fill in);\n"
        "see `run_benchmark.py validate-submission --help`",
    )
    data.add_argument(
        "--submissions-dir",
        metavar="DIR",
        default=None,
        help="folder of submissions (default: the repository's submissions/)",
    )
    data.add_argument(
        "--skip-missing", action="store_true", help="skip tasks whose dataset is missing instead of stopping"
    )
    data.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="leave out the images of bad label-file rows (listed in a warning) instead of stopping\n"
        "(recorded in results and rejected by submissions)",
    )

    enc = parser.add_argument_group("encoder loading")
    enc.add_argument(
        "--arch",
        help="architecture when it cannot be inferred from the checkpoint (e.g. resnet50, vit_base_patch16_224)",
    )
    enc.add_argument(
        "--allow-partial-load",
        action="store_true",
        help="accept a checkpoint that does not provide every backbone tensor (recorded in results)",
    )
    enc.add_argument(
        "--text-encoder",
        metavar="DIR",
        help="zero-shot tasks: local Hugging Face BERT/tokenizer folder the checkpoint's text tower was trained with\n"
        "(needed for official MGCA/GLoRIA/ConVIRT releases; our pretraining exports record it)",
    )
    enc.add_argument(
        "--input-contract",
        metavar="PRESET|JSON",
        help="the encoder's input normalisation when its checkpoint does not state it (the format's guess is\n"
        "recorded otherwise): a preset (cxr, imagenet, clip, chexzero, none) or a JSON object of mean, std,\n"
        'channels, e.g. \'{"mean": [0.4], "std": [0.33], "channels": 3}\'; recorded in every result',
    )
    enc.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow unpickling arbitrary objects from the checkpoint (only for files you trust)",
    )

    run = parser.add_argument_group("execution")
    run.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    run.add_argument(
        "--batch-size",
        type=int_option(1),
        default=None,
        help="images per encoder forward pass (default: 256 on cuda, 32 on cpu)",
    )
    run.add_argument(
        "--workers",
        type=int_option(0, " (0: decode in the main process)"),
        default=None,
        help="image-decoding worker processes (default: min(8, cpus - 1))",
    )
    run.add_argument(
        "--train-views",
        type=int_option(1),
        default=None,
        help="cached augmented views per training image (default: 4 paper, 2 demo)",
    )
    run.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="exact mode: run the encoder on freshly augmented images every epoch\n(slow; for validating the cache)",
    )
    run.add_argument(
        "--probe-batching",
        choices=("on", "off"),
        default="on",
        help="classification: train the linear probes of all seeds of a task and label fraction\n"
        "together, as one batched computation on the cached features (default: on; each head keeps\n"
        "its own initialisation, data order, early stopping and best epoch; recorded in each\n"
        "result's provenance, not in unit keys; on CPU the numbers are bit-identical to off).\n"
        "off: one probe after another with the single-head trainer",
    )
    run.add_argument(
        "--limit",
        type=int_option(1, " (images per split)"),
        default=None,
        help="debug: use at most N images per split (results are flagged and rejected by submissions)",
    )
    run.add_argument(
        "--seg-max-epochs",
        type=int_option(1, " (epochs)"),
        default=None,
        help="debug: train segmentation heads for at most N epochs (below the recipe's cap; recorded in the result's "
        "flags as max_epochs_capped and in its unit key)",
    )
    run.add_argument(
        "--no-progress", action="store_true", help="no progress bars (default: bars only when stderr is a terminal)"
    )
    run.add_argument(
        "--progress",
        action="store_true",
        help="progress bars even when stderr is not a terminal (e.g. a batch-job log)",
    )
    run.add_argument(
        "--mgca-bn-drift",
        action="store_true",
        help="segmentation/detection: let the frozen encoder's batch-norm statistics drift while training,\n"
        "as MGCA's code did (for comparison with published numbers; recorded in results)",
    )
    run.add_argument(
        "--yolo-semantics",
        choices=("reference", "mmdet"),
        default="reference",
        help="detection: the YOLOv3 target assignment, loss and box score of the reference code (MGCA; default)\n"
        "or mmdet's stock YOLOv3Head (recorded in results; docs/protocol.md)",
    )
    run.add_argument(
        "--geometry",
        choices=("stretch", "letterbox"),
        default="stretch",
        help="segmentation/detection: how an image becomes the input square: stretched like the reference\n"
        "code (default) or letterboxed (longer side + zero padding; recorded in results)",
    )
    run.add_argument(
        "--zeroshot-threshold-on-test",
        action="store_true",
        help="zero-shot: choose the F1/accuracy and grounding thresholds on the TEST split, as earlier papers did\n"
        "(compatibility switch, recorded in results; default: the validation split)",
    )
    parser.add_argument("--version", action="version", version=f"medvlp-bench {__version__}")
    return parser


def parse_int_list(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise BenchmarkError(f"--{what} expects comma-separated integers, got {text!r}") from None


def encoder_label(spec: str) -> str:
    path = Path(spec)
    label = path.stem if path.suffix else spec
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "encoder"


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError(
            f"--device {name}: CUDA is not available on this machine (torch {torch.__version__}); use --device cpu"
        )
    return device


def show_progress(args) -> bool:
    """Bars on a terminal; in a batch-job log (stderr not a terminal) they would write one
    line per update, so they are off there unless --progress asks for them."""
    if args.no_progress:
        return False
    return bool(args.progress or sys.stderr.isatty())


def make_suite(args, cache_dir: Path):
    from .data_roots import resolve_data_roots
    from .suites import demo_suite, paper_suite

    if args.suite == "demo":
        root = Path(args.demo_root) if args.demo_root else cache_dir / "demo-suite"
        if os.path.lexists(root) and not root.is_dir():
            raise BenchmarkError(
                f"--demo-root {root} is a file, not a folder: "
                "give the folder the demo suite is (or will be) generated in"
            )
        if not root.exists() and not args.list_tasks:
            from .runner import check_writable_folder

            check_writable_folder(root, "--demo-root")
        return demo_suite(
            root, train_views=args.train_views or 2, generate=not args.list_tasks, progress=show_progress(args)
        )
    return paper_suite(resolve_data_roots(args.data_root), train_views=args.train_views or 4)


def list_tasks(suite) -> str:
    from .datasets import get_dataset
    from .registry import all_tasks

    rows = []
    for task in all_tasks().values():
        adapter = get_dataset(task.dataset)
        folder = adapter.find_folder(suite.data_roots)
        rows.append(
            [
                task.id,
                task.family,
                adapter.title,
                task.metric,
                ", ".join(f"{f}%" for f in task.fractions),
                f"yes ({folder})" if folder else "no",
            ]
        )
    where = suite.data_roots.root
    header = f"suite: {suite.name}; data root: {where if where else 'not set'} ({suite.data_roots.source})"
    return (
        header
        + "\n"
        + tabulate(
            rows, headers=["task", "family", "dataset", "metric", "fractions", "data present"], tablefmt="github"
        )
    )


def run(args) -> int:
    import torch

    from .context import RunContext
    from .features import FeatureCache
    from .registry import select_tasks
    from .results import read_results
    from .runner import check_datasets, parse_shard, plan_units, run_units, shard_units
    from .suites import DEFAULT_CACHE
    from .summary import summary_table

    cache_dir = Path(args.cache_dir) if args.cache_dir else DEFAULT_CACHE
    if not args.list_tasks:  # fail before any work (run_units checks again, e.g. the default --output)
        from .runner import check_writable_folder

        check_writable_folder(cache_dir, "--cache-dir")
        if args.output:
            check_writable_folder(Path(args.output), "--output")
    suite = make_suite(args, cache_dir)
    if args.skip_bad_rows:  # the adapters read it from the data roots
        suite = replace(suite, data_roots=replace(suite.data_roots, skip_bad_rows=True))
    # the CheXpert adapter reads the release choice from the data roots too
    suite = replace(suite, data_roots=replace(suite.data_roots, chexpert_release=args.chexpert_release))
    if args.list_tasks:
        print(list_tasks(suite))
        return 0
    if not args.encoder:
        raise BenchmarkError(
            "--encoder is required (for example --encoder random:resnet50, or a checkpoint path); see --help"
        )
    tasks = select_tasks(args.tasks)
    from .families import family_module

    for family in dict.fromkeys(t.family for t in tasks):
        family_module(family)  # fails early, with the fix, when a family's packages are missing
    device = resolve_device(args.device)
    fractions = parse_int_list(args.fractions, "fractions")
    seeds = parse_int_list(args.seeds, "seeds") or ([0, 1, 2] if suite.name == "paper" else [0])
    plan_units(tasks, fractions, seeds)  # a fraction a task lacks: refused before the encoder loads

    from .datasets import get_dataset

    missing = [
        name for name in dict.fromkeys(t.dataset for t in tasks) if not get_dataset(name).is_present(suite.data_roots)
    ]
    if missing:
        if not args.skip_missing:
            dummy = RunContext(None, device, suite, Path("."), cache_dir, None)
            raise BenchmarkError(
                "\n\n".join(check_datasets(dummy, [t for t in tasks if t.dataset in missing]))
                + "\n\n(--skip-missing runs the tasks whose data is present)"
            )
        tasks = [t for t in tasks if t.dataset not in missing]
        print(f"skipping tasks on missing datasets: {', '.join(missing)}")
        if not tasks:
            raise BenchmarkError("no task has its data present")

    from models.encoder import parse_contract
    from models.loading import load_encoder

    loaded = load_encoder(
        args.encoder,
        arch=args.arch,
        allow_partial=args.allow_partial_load,
        trust_pickle=args.trust_checkpoint,
        input_contract=parse_contract(args.input_contract) if args.input_contract else None,
    )
    loaded.encoder.to(device).eval()
    if any(t.family == "zeroshot" for t in tasks):
        from .families.zeroshot import drop_inapplicable

        tasks = drop_inapplicable(tasks, loaded)
    from .submissions import SUBMISSIONS_DIR, results_dir

    submission_folder = None
    if args.submission:
        if args.output:
            raise BenchmarkError("--submission decides the output folder; drop --output")
        submission_folder = Path(args.submissions_dir or SUBMISSIONS_DIR) / args.submission
        output = results_dir(submission_folder, suite.name)
    else:
        output = Path(args.output) if args.output else Path("results") / suite.name / encoder_label(args.encoder)
    workers = args.workers if args.workers is not None else max(0, min(8, (os.cpu_count() or 1) - 1))
    batch = args.batch_size or (256 if device.type == "cuda" else 32)
    flags = {"allow_partial_load": True} if args.allow_partial_load else {}
    flags.update({"mgca_bn_drift": True} if args.mgca_bn_drift else {})
    flags.update({"skip_bad_rows": True} if args.skip_bad_rows else {})
    flags.update({"zeroshot_threshold_on_test": True} if args.zeroshot_threshold_on_test else {})
    # protocol switches: recorded only when they leave the reference (the flags are part of every unit key)
    flags.update({"yolo_semantics": args.yolo_semantics} if args.yolo_semantics != "reference" else {})
    flags.update({"dense_geometry": args.geometry} if args.geometry != "stretch" else {})
    ctx = RunContext(
        loaded=loaded,
        device=device,
        suite=suite,
        output=output,
        cache_dir=cache_dir,
        feature_cache=None if args.no_feature_cache else FeatureCache(cache_dir / "features"),
        encode_batch_size=batch,
        workers=workers,
        progress=show_progress(args),
        limit=args.limit,
        seg_epoch_cap=args.seg_max_epochs,
        flags=flags,
        text_encoder=args.text_encoder,
        probe_batching=args.probe_batching == "on",
    )
    shard_index, shard_count = parse_shard(args.shard)
    units = shard_units(plan_units(tasks, fractions, seeds), shard_index, shard_count)
    if not suite.comparable:
        print("NOTE: demo (smoke) suite: synthetic images; numbers are NOT comparable with published results.")
    print(
        f"encoder: {args.encoder} ({loaded.format}, {loaded.encoder.arch}, sha256 {str(loaded.sha256)[:12]}) "
        f"on {device}; "
        f"{len(units)} units -> {output}"
    )
    torch.manual_seed(0)
    run_units(ctx, units, overwrite=args.overwrite)
    selected = {t.id for t in tasks}
    everything = [r for r in read_results(output) if r.unit.task in selected]
    print()
    print(f"Summary ({suite.name} suite, {args.encoder}; % , mean ± std over seeds) from {output}:")
    print(summary_table(everything))
    if submission_folder is not None:
        from .submissions import validate_submission, write_metadata_template

        path = write_metadata_template(submission_folder, args.submission, loaded, args.encoder)
        problems = validate_submission(submission_folder, (suite.name,))
        print(f"\nsubmission {submission_folder}: metadata in {path}")
        print("\n".join(f"  - {p}" for p in problems) if problems else "  valid")
    return 0


def leaderboard_main(argv: list[str]) -> int:
    from .leaderboard import LEADERBOARDS, render_all
    from .submissions import SUBMISSIONS_DIR

    parser = argparse.ArgumentParser(
        prog="run_benchmark.py leaderboard",
        description="Regenerate leaderboards/*.md (and plots) from submissions/ and the reported numbers.",
    )
    parser.add_argument("--submissions-dir", type=Path, default=SUBMISSIONS_DIR)
    parser.add_argument("--out", type=Path, default=LEADERBOARDS)
    parser.add_argument("--suites", default="paper,demo")
    args = parser.parse_args(argv)
    skipped: list[str] = []
    written = render_all(args.submissions_dir, args.out, tuple(args.suites.split(",")), skipped)
    for path in written:
        print(path)
    for line in skipped:
        print(f"not shown: {line}")
    return 0


def validate_main(argv: list[str]) -> int:
    from .submissions import validate_submission

    parser = argparse.ArgumentParser(
        prog="run_benchmark.py validate-submission",
        description="Check a submission folder: metadata schema, every task x fraction x seed unit, checkpoint hash, "
        "split manifests, compatibility switches and --limit.",
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--suites", default=None, help="suites to check (default: those with results)")
    args = parser.parse_args(argv)
    problems = validate_submission(args.folder, tuple(args.suites.split(",")) if args.suites else None)
    if problems:
        print(f"{args.folder}: {len(problems)} problem(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(f"{args.folder}: valid")
    return 0


def inspect_main(argv: list[str]) -> int:
    from .inspect_encoder import main as inspect_encoder_main

    return inspect_encoder_main(argv)


def export_main(argv: list[str]) -> int:
    from .export_hf import main as export_hf_main

    return export_hf_main(argv)


SUBCOMMANDS = {
    "leaderboard": leaderboard_main,
    "validate-submission": validate_main,
    "inspect": inspect_main,
    "export": export_main,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        return run(build_parser().parse_args(argv))
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished units are saved; rerun the same command to resume.", file=sys.stderr)
        return 130
