"""Synthesis -> pretraining -> benchmark -> submission for one (method, generator) pair.

A thin orchestrator over the other command-line tools; each step is a command template
that can be replaced (``--synthesis-cmd``, ``--benchmark-cmd``, ``--submission-cmd``) and
skipped when its output already exists, so a rerun continues where it stopped.

    python -m recipes.pretraining.chain --method mgca --generator roentgen --data-root /data \
        --text-encoder /models/Bio_ClinicalBERT --work runs/chain -- --epochs 50

Arguments after ``--`` go to ``python -m recipes.pretraining``. Placeholders in templates:
{python} {data_root} {generator} {synthetic_root} {checkpoint} {results} {work} {method}.

Pluggable steps: by default synthesis runs ``{python} -m recipes.synthesis generate`` (the
synthesis recipe; its output root is a drop-in MIMIC-CXR-JPG layout) with
``--synthesis-model`` and ``--preset`` (default: the generator name when it is a preset);
the submission tooling is built in another issue, so submission is skipped unless
``--submission-cmd`` is given. Extra placeholders: {synthesis_model} {preset}. With
``--generator real`` the synthesis step is skipped and real images are used.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

DEFAULT_SYNTHESIS = ("{python} -m recipes.synthesis generate --data-root {data_root} --model {synthesis_model} "
                     "--output {synthetic_root} --preset {preset} --generator-name {generator}")
DEFAULT_BENCHMARK = "{python} run_benchmark.py --encoder {checkpoint} --data-root {data_root} --output {results}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.pretraining.chain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, choices=("convirt", "gloria", "mgca"), help="pretraining method")
    p.add_argument("--generator", required=True, help="image generator name (roentgen, sd21, ...) or 'real' for real images")
    p.add_argument("--data-root", required=True, help="MIMIC-CXR-JPG + reports root (and the benchmark datasets' root)")
    p.add_argument("--text-encoder", required=True, help="local BERT folder")
    p.add_argument("--work", required=True, help="folder for every step's output")
    p.add_argument("--synthetic-root", default=None, help="existing synthetic image set (skips synthesis); default <work>/synthetic")
    p.add_argument("--synthesis-model", default="", help="local diffusers pipeline folder for the synthesis step (SD 2.1 / RoentGen)")
    p.add_argument("--preset", default=None, help="synthesis preset (default: the generator name if it is one, else sd21)")
    p.add_argument("--synthesis-cmd", default=DEFAULT_SYNTHESIS, help="synthesis command template")
    p.add_argument("--benchmark-cmd", default=DEFAULT_BENCHMARK, help="benchmark command template")
    p.add_argument("--submission-cmd", default=None, help="submission command template (skipped when absent)")
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
    work = Path(a.work)
    real = a.generator == "real"
    synthetic_root = Path(a.synthetic_root) if a.synthetic_root else work / "synthetic"
    pre_out = work / "pretrain"
    source = "real" if real else a.generator
    # the exported file name is <method>-<source label>-<arch>.ckpt (see TrainConfig.export_name)
    extra = [x for x in a.pretrain_args if x != "--"]
    arch = extra[extra.index("--arch") + 1] if "--arch" in extra else "resnet50"
    checkpoint = pre_out / f"{a.method}-{source}-{arch}.ckpt"
    values = dict(python=shlex.quote(sys.executable), data_root=shlex.quote(a.data_root), generator=shlex.quote(a.generator),
                  synthetic_root=shlex.quote(str(synthetic_root)), checkpoint=shlex.quote(str(checkpoint)),
                  results=shlex.quote(str(work / "results")), work=shlex.quote(str(work)), method=a.method,
                  synthesis_model=shlex.quote(a.synthesis_model or "MODEL_DIR"), preset=shlex.quote(a.preset or _preset(a.generator)))
    steps = []
    if not real:
        steps.append(("synthesis", shlex.split(a.synthesis_cmd.format(**values)), synthetic_root / "mimic-cxr-jpg"))
    launcher = [sys.executable] if a.nproc <= 1 else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(a.nproc)]
    pre = [*launcher, "-m", "recipes.pretraining", "--method", a.method, "--data-root", a.data_root, "--text-encoder",
           a.text_encoder, "--output", str(pre_out)]
    if not real:
        pre += ["--image-source", "synthetic", "--synthetic-root", str(synthetic_root), "--generator", a.generator]
    steps.append(("pretraining", pre + extra, checkpoint))
    steps.append(("benchmark", shlex.split(a.benchmark_cmd.format(**values)), None))
    if a.submission_cmd:
        steps.append(("submission", shlex.split(a.submission_cmd.format(**values)), None))
    return steps


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    for name, cmd, done in plan(a):
        if done is not None and done.exists() and name == "synthesis":
            print(f"[chain] {name}: {done} exists, skipped", flush=True)
            continue
        print(f"[chain] {name}: {shlex.join(cmd)}", flush=True)
        if a.dry_run:
            continue
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"[chain] {name} failed with status {rc}", file=sys.stderr)
            return rc
    if not a.submission_cmd:
        print("[chain] submission: no --submission-cmd given (submission tooling not wired yet); skipped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
