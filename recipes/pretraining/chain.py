r"""Synthesis -> pretraining -> benchmark -> submission for one (method, generator) pair.

A thin orchestrator over the other command-line tools; each step is a command template
that can be replaced (``--synthesis-cmd``, ``--benchmark-cmd``, ``--submission-cmd``) and
skipped when its output already exists, so a rerun continues where it stopped.

    python -m recipes.pretraining.chain --method mgca --generator roentgen --data-root /data \
        --text-encoder /models/Bio_ClinicalBERT --work runs/chain -- --epochs 50

Arguments after ``--`` go to ``python -m recipes.pretraining``. Placeholders in templates:
{python} {run_benchmark} {data_root} {generator} {synthetic_root} {checkpoint} {results} {work} {method}
{destination} (``--output {results}``, or the submission options) {steps}.

Pluggable steps: by default synthesis runs ``{python} -m recipes.synthesis generate`` (the
synthesis recipe; its output root is a drop-in MIMIC-CXR-JPG layout) with
``--synthesis-model``, ``--preset`` (default: the generator name when it is a preset) and
``--steps {steps}``: ``--synthesis-steps`` defaults to 50, the study's setting for BOTH
generators (Study A sampled SD 2.1 and RoentGen with 50 steps); ``--synthesis-steps 75`` gives
RoentGen's authors' sampling. The steps used are recorded in the synthetic root's
``SYNTHESIS.json`` and manifest, and from there in the pretrained checkpoint;
``--synthesis-args`` and ``--benchmark-args`` append options to those commands (for example the demo suite
and a task subset: ``--benchmark-args "--suite demo --demo-root {data_root} --tasks rsna_cls"``).
Extra placeholders: {synthesis_model} {preset} {submission} {submissions_dir}. With
``--generator real`` the synthesis step is skipped and real images are used.

Purely synthetic pairs: ``--pairs synthetic`` replaces the synthesis step by the SynCXR recipe
(``{python} -m recipes.syncxr run``: synthetic reports from ``--report-model``, images from
``--synthesis-model``, curation by ``--curation-model``; ``--syncxr-args`` appends options, e.g.
``--count``), whose output root ``<work>/syncxr-root`` (``--syncxr-root``) is a drop-in MIMIC-CXR
data root: pretraining reads it with ``--data-root <root>`` and real images (no conversion), and
the checkpoint is also linked as ``<method>-syncxr-<generator>-<arch>.ckpt`` for the benchmark.
The submission then records synthetic images AND synthetic reports. Extra placeholders:
{report_model} {curation_model} {syncxr_root} {syncxr_work}.

Submission: with ``--submission NAME`` the benchmark writes its results straight into
``<submissions-dir>/NAME/`` (``run_benchmark.py --submission``), then the chain fills in what it
knows in ``submission.yaml`` (method, method_id, pretraining images and generator) plus every
``--meta KEY=VALUE`` (the author's fields: paper, code, licence, contact, checkpoint.url, ...;
dotted keys reach nested fields), and runs ``validate-submission``: the chain's exit status is 1
when the submission is not valid (the problems are printed). ``--submission-cmd`` replaces this
built-in step with a command template.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

DEFAULT_SYNTHESIS = (
    "{python} -m recipes.synthesis generate --data-root {data_root} --model {synthesis_model} "
    "--output {synthetic_root} --preset {preset} --steps {steps} --generator-name {generator}"
)
STUDY_STEPS = 50  # Study A: 50 sampling steps for SD 2.1 and RoentGen alike (RoentGen's authors used 75)
DEFAULT_SYNCXR = (
    "{python} -m recipes.syncxr run --data-root {data_root} --work {syncxr_work} --output {syncxr_root} "
    "--llm {report_model} --image-model {synthesis_model} --mllm {curation_model} --preset {preset} --steps {steps} "
    "--generator-name {generator}"
)
DEFAULT_BENCHMARK = "{python} {run_benchmark} --encoder {checkpoint} --data-root {data_root} {destination}"
# one per pretraining preset (recipes.pretraining.presets.PRESET_NAMES; kept here so the chain imports no torch)
METHOD_TITLES = {
    "convirt": "ConVIRT",
    "convirt-original": "ConVIRT (original code's settings)",
    "gloria": "GLoRIA",
    "gloria-caption": "GLoRIA (MGCA caption input)",
    "mgca": "MGCA",
}
RUN_BENCHMARK = Path(__file__).resolve().parents[2] / "run_benchmark.py"
KNOWN_GENERATORS = ("sd21", "roentgen")  # the submission schema's generator names; anything else is "other"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recipes.pretraining.chain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--method", required=True, choices=tuple(METHOD_TITLES), help="pretraining preset (docs/protocol.md, 'Recipes')"
    )
    p.add_argument(
        "--generator", required=True, help="image generator name (roentgen, sd21, ...) or 'real' for real images"
    )
    p.add_argument("--data-root", required=True, help="MIMIC-CXR-JPG + reports root (and the benchmark datasets' root)")
    p.add_argument("--text-encoder", required=True, help="local BERT folder")
    p.add_argument("--work", required=True, help="folder for every step's output")
    p.add_argument(
        "--synthetic-root",
        default=None,
        help="existing synthetic image set (skips synthesis); default <work>/synthetic",
    )
    p.add_argument(
        "--synthesis-model",
        default="",
        help="local diffusers pipeline folder for the synthesis step (SD 2.1 / RoentGen)",
    )
    p.add_argument(
        "--preset", default=None, help="synthesis preset (default: the generator name if it is one, else sd21)"
    )
    p.add_argument(
        "--synthesis-steps",
        type=int,
        default=STUDY_STEPS,
        metavar="N",
        help=f"sampling steps of the synthesis step (default {STUDY_STEPS}: the study's setting for both generators;\n"
        "75 = RoentGen's authors' sampling); recorded in SYNTHESIS.json and the checkpoint",
    )
    p.add_argument(
        "--pairs",
        default="real",
        choices=("real", "synthetic"),
        help="real: MIMIC-CXR reports with real or synthetic images (default); synthetic: purely synthetic\n"
        "image-text pairs from the SynCXR recipe (python -m recipes.syncxr run), pretrained on its root",
    )
    p.add_argument("--report-model", default="", help="--pairs synthetic: local causal LM folder writing the reports")
    p.add_argument(
        "--curation-model", default="", help="--pairs synthetic: local image-text-to-text folder curating the images"
    )
    p.add_argument(
        "--syncxr-root",
        default=None,
        help="--pairs synthetic: existing SynCXR root (skips it); default <work>/syncxr-root",
    )
    p.add_argument("--syncxr-cmd", default=DEFAULT_SYNCXR, help="--pairs synthetic: SynCXR command template")
    p.add_argument(
        "--syncxr-args",
        default="",
        help='extra options (a template) appended to the SynCXR command, e.g. "--count 200000"',
    )
    p.add_argument("--synthesis-cmd", default=DEFAULT_SYNTHESIS, help="synthesis command template")
    p.add_argument("--benchmark-cmd", default=DEFAULT_BENCHMARK, help="benchmark command template")
    p.add_argument(
        "--synthesis-args",
        default="",
        help="extra options (a template) appended to the synthesis command,\n"
        'e.g. "--height 256 --width 256 --steps 25 --limit 100" (they override the preset)',
    )
    p.add_argument(
        "--benchmark-args",
        default="",
        help="extra options (a template) appended to the benchmark command,\n"
        'e.g. "--suite demo --demo-root {data_root} --tasks rsna_cls --fractions 100"',
    )
    p.add_argument(
        "--submission",
        default=None,
        metavar="NAME",
        help="write the benchmark results into <submissions-dir>/NAME/, fill its\n"
        "submission.yaml and validate it (default: results go to <work>/results, no submission)",
    )
    p.add_argument(
        "--submissions-dir",
        default=None,
        metavar="DIR",
        help="folder of submissions (default: the repository's submissions/)",
    )
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="submission.yaml field, e.g. --meta licence=Apache-2.0\n"
        "--meta checkpoint.url=https://... (values are read as YAML scalars); repeatable",
    )
    p.add_argument(
        "--submission-cmd", default=None, help="submission command template replacing the built-in fill + validate step"
    )
    p.add_argument("--nproc", type=int, default=1, help="processes for pretraining (torchrun when > 1)")
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    p.add_argument("pretrain_args", nargs=argparse.REMAINDER, help="after --: extra arguments for the pretraining CLI")
    return p


def _preset(generator: str) -> str:
    try:
        from recipes.synthesis.generate import PRESETS
    except Exception:  # the synthesis recipe is optional for the chain's other steps
        return "sd21"
    return generator if generator in PRESETS else "sd21"


def plan(a: argparse.Namespace) -> list[tuple[str, list[str], Path | None]]:
    """(step name, command, output whose existence marks the step done)."""
    if a.synthesis_steps < 1:
        raise SystemExit(f"--synthesis-steps must be >= 1, got {a.synthesis_steps}")
    work = Path(a.work)
    real = a.generator == "real"
    pairs_synthetic = a.pairs == "synthetic"
    if pairs_synthetic and real:
        raise SystemExit("--pairs synthetic needs an image generator (--generator roentgen, sd21, ...), not 'real'")
    synthetic_root = Path(a.synthetic_root) if a.synthetic_root else work / "synthetic"
    syncxr_root = Path(a.syncxr_root) if a.syncxr_root else work / "syncxr-root"
    pre_out = work / "pretrain"
    source = "real" if real or pairs_synthetic else a.generator
    # the exported file name is <method>-<source label>-<arch>.ckpt (see TrainConfig.export_name); a SynCXR
    # root is read as real data, so its checkpoint is <method>-real-<arch>.ckpt, linked under a SynCXR name
    extra = [x for x in a.pretrain_args if x != "--"]
    arch = extra[extra.index("--arch") + 1] if "--arch" in extra else "resnet50"
    exported = pre_out / f"{a.method}-{source}-{arch}.ckpt"
    checkpoint = pre_out / f"{a.method}-syncxr-{a.generator}-{arch}.ckpt" if pairs_synthetic else exported
    submissions_dir = submissions_root(a)
    if a.submission:
        destination = f"--submission {shlex.quote(a.submission)} --submissions-dir {shlex.quote(str(submissions_dir))}"
    else:
        destination = f"--output {shlex.quote(str(work / 'results'))}"
    values = dict(
        python=shlex.quote(sys.executable),
        data_root=shlex.quote(a.data_root),
        generator=shlex.quote(a.generator),
        synthetic_root=shlex.quote(str(synthetic_root)),
        checkpoint=shlex.quote(str(checkpoint)),
        results=shlex.quote(str(work / "results")),
        work=shlex.quote(str(work)),
        method=a.method,
        synthesis_model=shlex.quote(a.synthesis_model or "MODEL_DIR"),
        preset=shlex.quote(a.preset or _preset(a.generator)),
        run_benchmark=shlex.quote(str(RUN_BENCHMARK)),
        steps=str(int(a.synthesis_steps)),
        submission=shlex.quote(a.submission or ""),
        submissions_dir=shlex.quote(str(submissions_dir)),
        destination=destination,
        report_model=shlex.quote(a.report_model or "LLM_DIR"),
        curation_model=shlex.quote(a.curation_model or "MLLM_DIR"),
        syncxr_root=shlex.quote(str(syncxr_root)),
        syncxr_work=shlex.quote(str(work / "syncxr")),
    )
    steps = []
    if pairs_synthetic:
        steps.append(
            (
                "syncxr",
                shlex.split(a.syncxr_cmd.format(**values)) + shlex.split(a.syncxr_args.format(**values)),
                syncxr_root / "SYNCXR.json",
            )
        )
    elif not real:
        steps.append(
            (
                "synthesis",
                shlex.split(a.synthesis_cmd.format(**values)) + shlex.split(a.synthesis_args.format(**values)),
                synthetic_root / "mimic-cxr-jpg",
            )
        )
    launcher = (
        [sys.executable]
        if a.nproc <= 1
        else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(a.nproc)]
    )
    pre = [
        *launcher,
        "-m",
        "recipes.pretraining",
        "--method",
        a.method,
        "--data-root",
        str(syncxr_root) if pairs_synthetic else a.data_root,
        "--text-encoder",
        a.text_encoder,
        "--output",
        str(pre_out),
    ]
    if not real and not pairs_synthetic:
        pre += ["--image-source", "synthetic", "--synthetic-root", str(synthetic_root), "--generator", a.generator]
    steps.append(("pretraining", pre + extra, exported))
    if pairs_synthetic:  # built-in step, run in this process (shown as the equivalent command)
        steps.append(("link-checkpoint", ["ln", "-f", str(exported), str(checkpoint)], checkpoint))
    steps.append(
        (
            "benchmark",
            shlex.split(a.benchmark_cmd.format(**values)) + shlex.split(a.benchmark_args.format(**values)),
            None,
        )
    )
    if a.submission_cmd:
        steps.append(("submission", shlex.split(a.submission_cmd.format(**values)), None))
    elif a.submission:
        # built-in step, run in this process (shown as the equivalent validation command)
        steps.append(
            (
                "submission",
                [sys.executable, str(RUN_BENCHMARK), "validate-submission", str(submissions_dir / a.submission)],
                None,
            )
        )
    return steps


def submissions_root(a: argparse.Namespace) -> Path:
    if a.submissions_dir:
        return Path(a.submissions_dir)
    from benchmark.submissions import SUBMISSIONS_DIR

    return SUBMISSIONS_DIR


def parse_meta(items: list[str]) -> dict:
    """``["licence=MIT", "checkpoint.url=n/a"]`` -> ``{"licence": "MIT", "checkpoint": {"url": "n/a"}}``."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--meta expects KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value) if value.strip() else ""
        if parsed is not None and not isinstance(parsed, (str, bool, int, float)):
            parsed = value  # keep anything that is not a scalar as the literal text
        *parents, leaf = key.strip().split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = parsed
    return out


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def fill_submission(
    folder: Path, method: str, generator: str, meta: dict | None = None, *, reports: str | None = None
) -> Path:
    """Write what the chain knows (and ``meta``) into ``folder/submission.yaml``, which the
    benchmark's ``--submission`` run created with the harness-known fields. ``reports``
    (``synthetic`` for SynCXR pairs) sets the pretraining reports and dataset."""
    import yaml

    from benchmark.atomic import atomic_write_text
    from benchmark.submissions import metadata_path

    path = metadata_path(folder)
    current = yaml.safe_load(path.read_text()) if path.is_file() else {}
    real = generator == "real"
    known = {
        "method": METHOD_TITLES.get(method, method),
        "method_id": method,
        "pretraining": {
            **(current.get("pretraining") or {}),
            "images": "real" if real else "synthetic",
            "generator": None if real else (generator if generator in KNOWN_GENERATORS else "other"),
            "mix_ratio": None,
        },
    }
    if reports is not None:
        known["pretraining"]["reports"] = reports
        if reports == "synthetic":
            known["pretraining"]["dataset"] = "SynCXR synthetic image-text pairs (recipes.syncxr)"
    merged = _merge(_merge(current, known), meta or {})
    atomic_write_text(path, yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))
    return path


def submission_step(a: argparse.Namespace) -> int:
    from benchmark.submissions import validate_submission

    folder = submissions_root(a) / a.submission
    reports = "synthetic" if a.pairs == "synthetic" else None
    path = fill_submission(folder, a.method, a.generator, parse_meta(a.meta), reports=reports)
    problems = validate_submission(folder)
    if problems:
        print(f"[chain] submission {folder} ({path.name}) is not valid yet: {len(problems)} problem(s):", flush=True)
        for problem in problems:
            print(f"  - {problem}", flush=True)
        return 1
    print(f"[chain] submission {folder}: valid", flush=True)
    return 0


def link_checkpoint(source: Path, target: Path) -> None:
    """``target`` becomes a hard link to ``source`` (a copy across file systems), atomically."""
    import os
    import shutil

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    for name, cmd, done in plan(a):
        if done is not None and done.exists() and name in ("synthesis", "syncxr"):
            print(f"[chain] {name}: {done} exists, skipped", flush=True)
            continue
        print(f"[chain] {name}: {shlex.join(cmd)}", flush=True)
        if a.dry_run:
            continue
        if name == "link-checkpoint":
            link_checkpoint(Path(cmd[-2]), Path(cmd[-1]))
            continue
        builtin = name == "submission" and not a.submission_cmd
        rc = submission_step(a) if builtin else subprocess.call(cmd)
        if rc != 0:
            print(f"[chain] {name} failed with status {rc}", file=sys.stderr)
            return rc
    if not a.submission_cmd and not a.submission:
        print(
            "[chain] submission: no --submission NAME (or --submission-cmd) given; results are in "
            f"{Path(a.work) / 'results'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
