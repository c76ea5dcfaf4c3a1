"""``run_benchmark.py inspect``: the facts it reports about an encoder, checked against values
computed here (tensor counts from the state dicts, features from the reference torchvision
model, cache sizes from the split sizes and the pyramid shapes worked out by hand)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from benchmark.cli import main
from benchmark.inspect_encoder import PAPER_SPLIT_SIZES

from .test_encoders import TEXT_AND_HEADS, timm_tiny_vit, tv_features, tv_tiny_resnet
from .test_zoo_resnet import medklip_checkpoint, tiny_resnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
ROOT = Path(__file__).resolve().parents[1]

# resnet_tiny's pyramid at the dense tasks' 224 px input: (channels, side) per level, strides 2-32
TINY_LEVELS = [(64, 112), (64, 56), (128, 28), (256, 14), (512, 7)]
TINY_ALL = sum(c * s * s for c, s in TINY_LEVELS)  # segmentation reads all five levels
TINY_DET = sum(c * s * s for c, s in TINY_LEVELS[2:])  # detection: strides 8, 16, 32


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["inspect", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def facts_of(capsys, *argv) -> tuple[int, dict, str]:
    code, out, err = run(capsys, *argv, "--json")
    return code, json.loads(out), err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect")
    ref = tv_tiny_resnet(seed=4)
    state = ref.state_dict()
    paths = {"tv": folder / "tv.pth", "mgca": folder / "mgca.ckpt", "vit": folder / "vit.pth"}
    torch.save(state, paths["tv"])
    lightning = {f"img_encoder_q.model.{k}": v for k, v in state.items()} | TEXT_AND_HEADS
    torch.save({"state_dict": lightning, "epoch": 3, "global_step": 120}, paths["mgca"])
    torch.save(timm_tiny_vit().state_dict(), paths["vit"])
    paths["zero"] = folder / "zeroed.pth"
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, paths["zero"])
    paths["nan"] = folder / "nan.pth"
    torch.save(
        {k: (v.clone().fill_(float("nan")) if k == "layer4.0.conv1.weight" else v) for k, v in state.items()},
        paths["nan"],
    )
    rng = np.random.default_rng(7)  # two 256 px grey images: the probes' resize + pad leaves them as they are
    for name in ("a", "b"):
        pixels = (rng.random((256, 256)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
        paths[name] = folder / f"{name}.png"
    return paths, ref


def test_torchvision_resnet_file_facts_are_the_real_values(capsys, files):
    paths, ref = files
    code, facts, err = facts_of(
        capsys, "--encoder", str(paths["tv"]), "--image", str(paths["a"]), "--image", str(paths["b"]), "--strict"
    )
    assert code == 0 and facts["problems"] == [] and "WARNING" not in err
    state = torch.load(paths["tv"], weights_only=True)
    required = [k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    load = facts["load"]
    assert facts["format"] == "torchvision_resnet" and facts["method_hint"] is None
    assert facts["architecture"] == {
        "name": "resnet_tiny",
        "class": "ResNetEncoder",
        "origin": "inferred from the tensors",
    }
    assert load["status"] == "ok" and load["n_loaded"] == load["n_expected"] == len(required) == 60
    assert load["missing"]["count"] == load["unexpected"]["count"] == load["wrong_shape"]["count"] == 0
    assert load["ignored"] == {
        "count": 2,
        "outside_backbone": 0,
        "head": 2,
        "examples": ["fc.weight", "fc.bias"],
        "by_prefix": None,
    }
    assert facts["contract"] == {
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
        "channels": 3,
        "input_size": None,
        "origin": "architecture default",
    }
    assert facts["features"] == {
        "global_dim": 512,
        "pyramid_strides": [2, 4, 8, 16, 32],
        "pyramid_channels": [64, 64, 128, 256, 512],
    }

    # the global features, recomputed with the reference model on the probes' pixels
    crops = [np.asarray(Image.open(paths[n]), dtype=np.float32)[16:240, 16:240] / 255 for n in ("a", "b")]
    x = (torch.from_numpy(np.stack(crops))[:, None].expand(-1, 3, -1, -1) - 0.5) / 0.5
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=True)
    with torch.no_grad():
        want = tv_features(ref, x)[0].double()
    g = facts["forward"]["global"]
    assert facts["forward"]["images"] == [str(paths["a"]), str(paths["b"])] and facts["forward"]["input"] == [
        2,
        3,
        299,
        299,
    ]
    assert g["shape"] == [2, 512] and g["nan"] == g["inf"] == 0 and g["zero_variance_images"] == []
    for stat in ("mean", "std", "min", "max"):
        assert g["stats"][stat] == pytest.approx(float(getattr(want, stat)()), rel=1e-5, abs=1e-7)
    assert g["identical_across_images"] is False
    assert g["relative_difference"] == pytest.approx(
        float((want[0] - want[1]).abs().max() / want.abs().max()), rel=1e-4
    )
    pyramid = facts["forward"]["pyramid"]
    assert [lv["shape"] for lv in pyramid["levels"]] == [[c, s, s] for c, s in TINY_LEVELS] and pyramid[
        "mismatches"
    ] == []

    assert facts["text_side"]["zero_shot_applicable"] is False and "no text encoder" in facts["text_side"]["reason"]
    cache = {row["task"]: row for row in facts["feature_cache"]["tasks"]}
    assert cache["chexpert_cls"]["bytes"] == (186_027 * 4 + 5_000 + 202) * 512 * 2 == 767_293_440
    assert cache["rsna_cls"]["bytes"] == (16_010 * 4 + 5_337 * 2) * 512 * 2
    assert cache["rsna_det"]["bytes"] == (16_010 + 5_337 * 2) * TINY_DET * 2 and TINY_DET == 175_616
    assert cache["objectcxr_det"]["bytes"] == (6_400 + 1_600 + 1_000) * TINY_DET * 2
    assert cache["siim_seg"]["bytes"] == (1_807 * 2) * TINY_ALL * 2 and TINY_ALL == 1_179_136
    assert cache["chexpert_zeroshot"]["bytes"] == 0
    assert facts["feature_cache"]["total_bytes"] == sum(r["bytes"] for r in cache.values())

    code, text, _ = run(capsys, "--encoder", str(paths["tv"]))
    assert code == 0
    for line in (
        "format:        torchvision_resnet - torchvision-style ResNet state dict",
        "architecture:  resnet_tiny (ResNetEncoder; inferred from the tensors)",
        "tensors:       loaded 60 of 60 backbone tensors; load ok",
        "features:      global 512-d; pyramid strides [2, 4, 8, 16, 32], channels [64, 64, 128, 256, 512]",
        "verdict:       OK (loads, finite and non-constant features)",
    ):
        assert line in text.splitlines()
    row = next(line.split() for line in text.splitlines() if line.startswith("  chexpert_cls "))
    assert " ".join(row) == "chexpert_cls 767.3 MB (186,027 train x 4 views + 5,000 val + 202 test) x 512 x 2 B"


def test_lightning_mgca_file(capsys, files):
    paths, _ = files
    code, facts, _ = facts_of(capsys, "--encoder", str(paths["mgca"]))
    assert code == 0 and facts["problems"] == []
    assert (facts["format"], facts["method_hint"], facts["architecture"]["name"]) == (
        "lightning_prefixed",
        "mgca",
        "resnet_tiny",
    )
    load = facts["load"]
    assert (load["prefix"], load["container"]) == ("img_encoder_q.model.", "state_dict")
    assert load["n_loaded"] == 60 and load["ignored"]["outside_backbone"] == len(TEXT_AND_HEADS) == 5
    assert load["ignored"]["count"] == 7 and set(load["ignored"]["examples"]) <= set(TEXT_AND_HEADS) | {
        "fc.weight",
        "fc.bias",
    }
    assert facts["format_notes"]["epoch"] == 3 and facts["format_notes"]["lightning"] is True
    # the text_encoder_q.model.* tensors make the zero-shot tasks applicable
    assert facts["text_side"] == {"in_checkpoint": None, "zero_shot_applicable": True, "reason": None}


def test_random_resnet_tiny(capsys):
    code, text, _ = run(capsys, "--encoder", "random:resnet_tiny")
    assert code == 0
    lines = text.splitlines()
    assert "format:        random - random:<arch>[@seed] - seeded random initialisation" in lines
    assert "architecture:  resnet_tiny (ResNetEncoder; named by the spec)" in lines
    assert "tensors:       none loaded (no checkpoint: the spec builds the weights)" in lines
    assert (
        "  zero-shot:   not applicable (encoder 'random:resnet_tiny@0' (random) is image-only: it has no text encoder)"
        in lines
    )
    assert any(line.startswith("  stats:       mean ") for line in lines) and lines[-1].startswith("verdict:       OK")


def test_vit_state_dict(capsys, files):
    paths, _ = files
    code, facts, _ = facts_of(capsys, "--encoder", str(paths["vit"]))
    assert code == 0 and facts["problems"] == []
    assert (facts["format"], facts["architecture"]["name"]) == ("timm_vit", "vit_tiny_test")
    assert facts["load"]["n_loaded"] == facts["load"]["n_expected"] == len(timm_tiny_vit().state_dict()) - 2  # head.*
    assert facts["contract"]["input_size"] == 32 and facts["forward"]["input"] == [2, 3, 32, 32]
    assert facts["features"] == {"global_dim": 48, "pyramid_strides": [4, 8, 16, 32], "pyramid_channels": [48] * 4}
    assert [lv["shape"] for lv in facts["forward"]["pyramid"]["levels"]] == [
        [48, 8, 8],
        [48, 4, 4],
        [48, 2, 2],
        [48, 1, 1],
    ]
    cache = {row["task"]: row for row in facts["feature_cache"]["tasks"]}
    assert cache["rsna_cls"]["bytes"] == (16_010 * 4 + 5_337 * 2) * 48 * 2
    # detection reads the levels at strides 8, 16, 32 (of the four) at the dense tasks' 224 px input
    assert cache["rsna_det"]["bytes"] == (16_010 + 5_337 * 2) * 48 * (28 * 28 + 14 * 14 + 7 * 7) * 2


def test_medklip_trunk_facts(capsys, tmp_path):
    path = tmp_path / "medklip.pth"
    torch.save(medklip_checkpoint(tiny_resnet(), {"res_base_model": "resnet_tiny"}), path)
    code, facts, _ = facts_of(capsys, "--encoder", str(path))
    assert code == 0 and facts["problems"] == []
    assert facts["format_source"] == "https://github.com/MediaBrain-SJTU/MedKLIP"
    assert facts["architecture"] == {
        "name": "resnet_tiny_layer3",
        "class": "ResNetTrunkEncoder",
        "origin": "named by the format",
    }
    assert facts["contract"]["origin"] == "MedKLIP code: transforms.Normalize(ImageNet mean/std), 224 px"
    assert facts["contract"]["mean"] == [0.485, 0.456, 0.406] and facts["load"]["n_loaded"] == 45
    assert facts["features"]["global_dim"] == 256 and facts["features"]["pyramid_channels"] == [64, 64, 128, 256, 256]
    assert [lv["shape"] for lv in facts["forward"]["pyramid"]["levels"]][-2:] == [[256, 14, 14], [256, 7, 7]]


@pytest.mark.parametrize("kind, warning", [("zero", "CONSTANT FEATURES"), ("nan", "NON-FINITE FEATURES")])
def test_constant_or_nan_features_are_flagged(capsys, files, kind, warning):
    paths, _ = files
    code, text, _ = run(capsys, "--encoder", str(paths[kind]))
    assert code == 0 and any(line.startswith(f"WARNING: {warning}") for line in text.splitlines())
    assert "verdict" not in text
    code, facts, err = facts_of(capsys, "--encoder", str(paths[kind]), "--strict")
    assert code == 1 and any(p.startswith(warning) for p in facts["problems"]) and f"WARNING: {warning}" in err
    g = facts["forward"]["global"]
    if kind == "zero":  # every weight 0: all-zero features for both images
        assert g["stats"] == {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0}
        assert g["identical_across_images"] is True and g["zero_variance_images"] == [0, 1]
    else:  # one NaN kernel in layer4 poisons every feature
        assert g["nan"] == 2 * 512 and g["stats"] is None
        assert any(p.startswith("NON-FINITE PYRAMID: level 4") for p in facts["problems"])


def test_refused_checkpoint_reports_what_is_missing(capsys, files, tmp_path):
    paths, _ = files
    state = torch.load(paths["tv"], weights_only=True)
    broken = {(f"renamed.{k}" if i % 2 else k): v for i, (k, v) in enumerate(sorted(state.items()))}
    torch.save(broken, tmp_path / "broken.pth")
    code, facts, err = facts_of(capsys, "--encoder", str(tmp_path / "broken.pth"))
    assert code == 2 and facts["load"]["status"] == "refused"
    assert facts["load"]["n_loaded"] == 31 and facts["load"]["missing"]["count"] == 29
    assert facts["problems"][0].startswith("LOAD REFUSED: a run would refuse this checkpoint")
    assert "31 of 60 backbone tensors found, 29 missing" in err and "--allow-partial-load" in err
    code, facts, _ = facts_of(capsys, "--encoder", str(tmp_path / "broken.pth"), "--allow-partial-load", "--strict")
    assert code == 1 and facts["load"]["status"] == "partial" and facts["problems"][0].startswith("PARTIAL LOAD: 29")


def test_paper_split_sizes_are_the_committed_manifests():
    for dataset in ("chexpert", "rsna", "siim"):
        counts = json.loads((ROOT / "tasks" / "manifests" / f"{dataset}.json").read_text())["counts"]
        train, val, test = PAPER_SPLIT_SIZES[dataset]
        assert (counts["train"], counts["val"]) == (train, val)
        assert counts["test"] == (0 if dataset == "chexpert" else test)  # CheXpert's test list is not shipped
    assert PAPER_SPLIT_SIZES["chexpert"][2] == 202


def test_inspect_runs_from_run_benchmark_py(capsys, monkeypatch):
    """The script's own entry point (run in this interpreter: a fresh one would spend its time importing)."""
    argv = ["run_benchmark.py", "inspect", "--encoder", "random:resnet_tiny", "--json", "--strict"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "run_benchmark.py"), run_name="__main__")
    assert done.value.code == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["spec"] == "random:resnet_tiny@0" and facts["features"]["global_dim"] == 512
    from benchmark.cli import build_parser

    assert "run_benchmark.py inspect --encoder SPEC" in build_parser().format_help()
