"""End to end through ``python -m recipes.pretraining.chain`` on the demo data: tiny synthesis
(random tiny Stable Diffusion) -> tiny pretraining (ConVIRT, resnet_tiny, tiny BERT) -> demo
benchmark -> a submission folder that validates.

The benchmark is restricted to the fast units (classification and zero-shot at 100% labels,
through the chain's ``--benchmark-args``): the full demo suite takes over 5 minutes on 2 CPU
cores even with ``resnet_tiny`` (segmentation at 100% alone ~2 min). So the submission is
valid except for the units deliberately skipped, which the chain reports (exit status 1) and
the test checks to be exactly those; every other check of ``validate_submission`` passes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from benchmark.registry import all_tasks
from benchmark.results import read_results
from benchmark.submissions import expected_units, validate_submission
from recipes.pretraining.chain import main as chain_main
from recipes.pretraining.tiny_text import write_tiny_bert
from recipes.synthesis.tiny import write_tiny_pipeline

NAME = "chain-convirt-tinysd"
FAST = "--tasks classification,zeroshot --fractions 100"
PRETRAIN = [
    "--arch",
    "resnet_tiny",
    "--image-init",
    "random",
    "--resize",
    "40",
    "--crop",
    "32",
    "--upsample",
    "0",
    "--max-words",
    "32",
    "--batch-size",
    "8",
    "--max-steps",
    "3",
    "--workers",
    "0",
    "--no-progress",
    "--no-validate",
    "--device",
    "cpu",
    "--seed",
    "0",
    "--hp",
    "proj_hidden=32",
]


@pytest.fixture(scope="module")
def chain_run(demo_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("chain")
    bert = write_tiny_bert(demo_root, base / "tiny-bert")
    model = write_tiny_pipeline(base / "tiny-sd")
    work, subs = base / "work", base / "submissions"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = chain_main(
            [
                "--method",
                "convirt",
                "--generator",
                "tiny-sd",
                "--data-root",
                str(demo_root),
                "--text-encoder",
                str(bert),
                "--work",
                str(work),
                "--synthesis-model",
                str(model),
                "--synthesis-args",
                "--height 32 --width 32 --steps 2 --batch-size 8 --device cpu --no-progress",
                "--benchmark-args",
                f"--suite demo --demo-root {{data_root}} --cache-dir {base / 'cache'} "
                f"--device cpu --workers 0 --no-progress {FAST}",
                "--submission",
                NAME,
                "--submissions-dir",
                str(subs),
                "--meta",
                "paper=n/a",
                "--meta",
                "code=n/a",
                "--meta",
                "licence=Apache-2.0",
                "--meta",
                "contact=medvlp-bench maintainers",
                "--meta",
                "checkpoint.url=n/a (test)",
                "--",
                *PRETRAIN,
            ]
        )
    finally:
        torch.set_num_threads(threads)
    return rc, work, subs / NAME


def test_chain_synthesis_pretraining_benchmark_submission(chain_run, demo_root):
    rc, work, folder = chain_run
    assert rc == 1  # the submission step reports the deliberately skipped units (below)
    # synthesis: a drop-in MIMIC-CXR-JPG root with one synthetic image per manifest row
    manifest = pd.read_csv(work / "synthetic" / "synthesis_manifest.csv")
    assert len(manifest) > 0 and (manifest.generator == "tiny-sd").all()
    assert all((work / "synthetic" / p).is_file() for p in manifest.path)
    # pretraining: the exported checkpoint records the synthetic source
    ckpt_path = work / "pretrain" / "convirt-tiny-sd-resnet_tiny.ckpt"
    record = torch.load(ckpt_path, weights_only=True)["medvlp"]
    assert record["method"] == "convirt" and record["image_source"] == "synthetic" and record["generator"] == "tiny-sd"
    # the generation settings the synthetic root records travel into the checkpoint (--steps 2 overrides the chain's 50)
    assert (
        record["synthesis"]["steps"] == 2
        and record["synthesis"]["generator"] == "tiny-sd"
        and record["synthesis"]["seed"] == 42
    )
    steps = [
        json.loads(line)["step"]
        for line in (work / "pretrain" / "log.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert steps and max(steps) == 3
    # benchmark: every fast demo unit, scored with that checkpoint
    results = read_results(folder / "results" / "demo")
    have = {(r.unit.task, r.unit.fraction, r.unit.seed) for r in results}
    families = {r.unit.task: r.family for r in results}
    fast = {
        u
        for u in expected_units("demo", zeroshot=True)
        if u[1] == 100 and all_tasks()[u[0]].family in ("classification", "zeroshot")
    }
    assert have == fast and set(families.values()) == {"classification", "zeroshot"}
    assert {r.encoder["arch"] for r in results} == {"resnet_tiny"} and all(r.suite == "demo" for r in results)
    # submission: metadata filled by the chain and --meta, and valid
    meta = yaml.safe_load((folder / "submission.yaml").read_text())
    assert meta["method"] == "ConVIRT" and meta["method_id"] == "convirt" and meta["name"] == NAME
    assert meta["pretraining"]["images"] == "synthetic" and meta["pretraining"]["generator"] == "other"
    assert meta["checkpoint"]["url"] == "n/a (test)" and meta["licence"] == "Apache-2.0"
    missing = expected_units("demo", zeroshot=True) - have
    problems = validate_submission(folder)
    assert problems and problems[0].startswith(f"demo: {len(missing)} missing unit(s): ")
    assert problems[1:] == []  # nothing else: metadata, checkpoint sha256, suite, flags and manifests are all valid
    assert all(u[1] != 100 or all_tasks()[u[0]].family in ("segmentation", "detection") for u in missing)


def _synthesis_command(*extra: str) -> list[str]:
    from recipes.pretraining.chain import build_parser, plan

    args = build_parser().parse_args(
        ["--method", "mgca", "--data-root", "/d", "--text-encoder", "/b", "--work", "/w", *extra]
    )
    steps = dict((name, cmd) for name, cmd, _ in plan(args))
    return steps["synthesis"]


@pytest.mark.parametrize("generator", ["roentgen", "sd21"])
def test_chain_synthesises_with_the_study_50_steps_for_both_generators(generator):
    cmd = _synthesis_command("--generator", generator)
    assert cmd[cmd.index("--preset") + 1] == generator
    assert cmd[cmd.index("--steps") + 1] == "50" and cmd.count("--steps") == 1
    authors = _synthesis_command("--generator", generator, "--synthesis-steps", "75")  # RoentGen's authors' sampling
    assert authors[authors.index("--steps") + 1] == "75"
    with pytest.raises(SystemExit, match="--synthesis-steps must be >= 1"):
        _synthesis_command("--generator", generator, "--synthesis-steps", "0")
