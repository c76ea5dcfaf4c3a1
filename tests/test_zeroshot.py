"""Zero-shot classification and grounding: scoring arithmetic, a constructed
model whose towers make the right prompt most similar (AUC 1.0, high grounding Dice; shuffled
prompts ~0.5), a recipes/pretraining checkpoint end to end through the CLI, the official MGCA
layout with --text-encoder, and image-only encoders reported as not applicable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.runner import run_one
from benchmark.zeroshot import scoring
from tests.test_pretraining import tiny_bert, tiny_config  # noqa: F401 - fixture reuse


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


# ---------------------------------------------------------------------------- arithmetic
def test_pair_softmax_and_validation_threshold():
    pos, neg = torch.eye(2)[:1], torch.eye(2)[1:]
    img = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=1)
    p = scoring.pair_probabilities(img, pos, neg)[:, 0]
    assert (
        p[0] == pytest.approx(np.exp(1) / (np.exp(1) + 1))
        and p[1] == pytest.approx(1 / (1 + np.e))
        and p[2] == pytest.approx(0.5)
    )
    y = np.array([1, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    t = scoring.best_f1_threshold(y, s)
    assert t == pytest.approx(0.75)  # cut between 0.8 and 0.7: F1 2*2/(2+3) = 0.8 beats every other cut
    m = scoring.threshold_metrics(y[:, None], s[:, None], np.array([t]), ["x"])
    assert m["f1"] == pytest.approx(0.8) and m["accuracy"] == pytest.approx(0.8)


def test_map_counts_match_a_direct_computation():
    rng = np.random.default_rng(0)
    sim, mask = rng.normal(size=(12, 12)), rng.random((12, 12)) > 0.6
    grid = scoring.threshold_grid(9)
    c = scoring.map_counts(sim, mask, grid)
    norm = (sim - sim.min()) / (sim.max() - sim.min())
    for k, t in enumerate(grid):
        assert c["pred"][k] == (norm > t).sum() and c["inter"][k] == ((norm > t) & mask).sum()
    assert c["hit"] == bool(mask.ravel()[np.argmax(sim)])


# ---------------------------------------------------------------------------- constructed model
def _key(x: torch.Tensor) -> str:
    return hashlib.sha1(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class Oracle:
    """Constructed towers: text = a fixed unit vector per prompt; an image's global embedding
    points at its classes' positive (or negative) prompt vectors, its local map at the
    positive prompt inside the mask and the negative one outside (looked up by pixels)."""

    def __init__(self, prompts: dict[str, torch.Tensor], labels: dict, masks: dict, classes, pairs):
        self.prompts, self.labels, self.masks, self.classes, self.pairs = prompts, labels, masks, classes, pairs
        self.describe = lambda: {"method": "oracle"}

    def prompt_embedding(self, texts, local=False):
        return F.normalize(torch.stack([self.prompts[t] for t in texts]).mean(0), dim=0)

    def image_embeddings(self, encoder, x, want_local=False):
        glob, local = [], []
        g = torch.Generator().manual_seed(0)
        for xi in x:
            k = _key(xi)
            if k in self.labels:
                vec = sum(self.prompts[self.pairs[c][0 if y else 1][0]] for c, y in zip(self.classes, self.labels[k]))
                glob.append(F.normalize(vec + 0.05 * torch.randn(vec.shape, generator=g), dim=0))
            if want_local:
                m = torch.from_numpy(self.masks[k]).float()[None, None]
                frac = F.adaptive_avg_pool2d(m, (m.shape[-1] // 8,) * 2)[0, 0]  # stride-8 feature grid
                pos, neg = (self.prompts[p[0]] for p in self.pairs[self.classes[0]])
                local.append(torch.einsum("hw,d->dhw", frac, pos) + torch.einsum("hw,d->dhw", 1 - frac, neg))
        return (torch.stack(glob) if glob else None), (torch.stack(local) if want_local else None)


@pytest.fixture(scope="module")
def demo_ctx(demo_root, tmp_path_factory):
    from benchmark.context import RunContext
    from benchmark.suites import demo_suite
    from models.loading import load_encoder

    suite = demo_suite(demo_root, progress=False)
    out = tmp_path_factory.mktemp("zs-oracle")
    loaded = load_encoder("random:resnet_tiny")
    return RunContext(
        loaded=loaded,
        device=torch.device("cpu"),
        suite=suite,
        output=out,
        cache_dir=out / "cache",
        feature_cache=None,
        encode_batch_size=16,
        workers=0,
        progress=False,
    )


def _oracle_for(ctx, data, prompt_set, shuffle: bool):
    from benchmark.families import zeroshot as zs
    from benchmark.families.segmentation import load_images
    from benchmark.features import ViewDataset, ViewPlan
    from benchmark.preprocess import PreprocessSpec

    task = data.task
    texts = sorted({t for c in prompt_set.classes.values() for side in ("positive", "negative") for t in c[side]})
    basis = torch.eye(len(texts))
    prompts = {t: basis[i] for i, t in enumerate(texts)}
    pairs = {c: prompt_set.pair(c) for c in task.classes}
    labels, masks = {}, {}
    ids = data.split_ids["val"] + data.split_ids["test"]
    if task.mode == "classification":
        resize, crop = zs.image_size(task, ctx)
        ds = ViewDataset(
            data.records.loc[ids, "path"].tolist(), ids, PreprocessSpec(resize=resize, crop=crop), ViewPlan(train=False)
        )
        for i, image_id in enumerate(ids):
            labels[_key(ctx.encoder.prepare(ds[i][1][:, 0])[0])] = data.records.loc[
                image_id, list(task.label_columns)
            ].tolist()
    else:
        _, size = zs.image_size(task, ctx)
        pos = [i for i in ids if data.records.loc[i, task.label_columns[0]] == 1]
        images, ms = load_images(ctx, data, pos, size, "letterbox")
        for image, m in zip(images, ms):
            masks[_key(ctx.encoder.prepare(torch.from_numpy(image).float().div(255.0)[None, None])[0])] = m
    if shuffle:  # each class gets another class's prompt pair
        order = list(task.classes)
        pairs = {c: pairs[order[(k + 1) % len(order)]] for k, c in enumerate(order)}
    return Oracle(prompts, labels, masks, list(task.classes), pairs), pairs


@pytest.mark.parametrize("task_id", ["chexpert_zeroshot", "rsna_grounding"])
def test_constructed_model_scores_perfectly_and_shuffled_prompts_do_not(task_id, demo_ctx, monkeypatch):
    from benchmark.families import zeroshot as zs
    from benchmark.registry import all_tasks
    from benchmark.results import UnitId
    from benchmark.task_data import load_task_data
    from benchmark.zeroshot.prompts import load_prompt_set

    task = all_tasks()[task_id]
    data = load_task_data(task, demo_ctx.suite, demo_ctx.cache_dir)
    prompt_set = load_prompt_set(task.prompts)
    unit = UnitId(task=task_id, fraction=100, seed=0)
    oracle, _ = _oracle_for(demo_ctx, data, prompt_set, shuffle=False)
    monkeypatch.setattr(zs, "_vl", lambda ctx: oracle)
    result, predictions = run_one(demo_ctx, data, unit)
    if task.mode == "classification":
        assert result.value == pytest.approx(1.0) and result.metrics["f1"] > 0.99
        assert result.hyperparameters["prompts"]["sha256"] == prompt_set.sha256
        assert result.metrics["threshold_split"] == "val"
        shuffled, pairs = _oracle_for(demo_ctx, data, prompt_set, shuffle=True)
        # the task asks for its own prompts; the shuffled model answers with another class's pair
        shuffled.pairs = {c: oracle.pairs[c] for c in task.classes}
        shuffled.labels = {k: [v[(i + 1) % len(v)] for i in range(len(v))] for k, v in oracle.labels.items()}
        monkeypatch.setattr(zs, "_vl", lambda ctx: shuffled)
        bad, _ = run_one(demo_ctx, data, unit)
        assert 0.3 < bad.value < 0.7, bad.metrics["auc_per_class"]
    else:
        assert result.metric == "dice" and result.value > 0.7, result.metrics
        assert result.metrics["pointing_game"] > 0.9 and result.metrics["iou"] > 0.5
        assert len(predictions) == result.data["n_test"] > 0
        from benchmark.scoring import unit_scores

        assert unit_scores(task, predictions).value("dice") == pytest.approx(result.value)


# ---------------------------------------------------------------------------- real checkpoints
@pytest.fixture(scope="module")
def mgca_ckpt(demo_root, tiny_bert, tmp_path_factory):  # noqa: F811
    from recipes.pretraining.train import train

    out = tmp_path_factory.mktemp("zs-mgca")
    return train(tiny_config(demo_root, tiny_bert, out / "run", "mgca", max_steps=2))


def test_pretraining_checkpoint_runs_zero_shot_end_to_end(mgca_ckpt, demo_root, tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.results import read_results

    args = [
        "--encoder",
        str(mgca_ckpt),
        "--suite",
        "demo",
        "--demo-root",
        str(demo_root),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--output",
        str(tmp_path / "out"),
        "--no-progress",
        "--workers",
        "0",
        "--tasks",
        "zeroshot",
    ]
    assert main(args) == 0
    results = {r.unit.task: r for r in read_results(tmp_path / "out")}
    assert set(results) == {"chexpert_zeroshot", "rsna_zeroshot", "siim_zeroshot", "rsna_grounding", "siim_grounding"}
    for r in results.values():
        assert r.family == "zeroshot" and (r.unit.fraction, r.unit.seed) == (100, 0) and 0.0 <= r.value <= 1.0
        assert r.encoder["text_side"]["method"] == "mgca" and r.hyperparameters["prompts"]["name"] == "chexzero_pairs"
    assert set(results["chexpert_zeroshot"].metrics["auc_per_class"]) == {
        "Atelectasis",
        "Cardiomegaly",
        "Consolidation",
        "Edema",
        "Pleural Effusion",
    }
    assert {"dice", "iou", "pointing_game", "threshold"} <= set(results["siim_grounding"].metrics)
    assert main(args) == 0 and "resume: 5 of 5 units" in capsys.readouterr().out  # unit keys are stable
    assert (
        main(
            args[:-2]
            + ["--tasks", "rsna_zeroshot", "--zeroshot-threshold-on-test", "--output", str(tmp_path / "compat")]
        )
        == 0
    )
    (compat,) = read_results(tmp_path / "compat")
    assert compat.flags["zeroshot_threshold_on_test"] and compat.metrics["threshold_split"] == "test"
    assert compat.metrics["auc"] == pytest.approx(results["rsna_zeroshot"].metrics["auc"])


def test_official_mgca_layout_needs_and_uses_text_encoder_dir(mgca_ckpt, tiny_bert, tmp_path):  # noqa: F811
    from benchmark.errors import BenchmarkError
    from benchmark.zeroshot.text_side import load_vision_language
    from models.loading import load_encoder

    ckpt = torch.load(mgca_ckpt, weights_only=True)
    bare = tmp_path / "mgca_official.ckpt"
    torch.save({"state_dict": ckpt["state_dict"], "epoch": 0}, bare)  # no medvlp record: as released
    ours = load_vision_language(load_encoder(str(mgca_ckpt)))
    ref_g, ref_l = ours.text_embeddings(["pneumonia", "no pleural effusion"])
    with pytest.raises(BenchmarkError, match="--text-encoder"):
        load_vision_language(load_encoder(str(bare)))
    official = load_vision_language(load_encoder(str(bare)), str(tiny_bert))
    assert official.source["layout"] == "official mgca release" and official.local_layer == "layer3"
    g, loc = official.text_embeddings(["pneumonia", "no pleural effusion"])
    assert torch.allclose(g, ref_g, atol=1e-5) and torch.allclose(loc, ref_l, atol=1e-5)


def test_image_only_encoder_is_reported_not_applicable(demo_root, tmp_path, capsys):
    from benchmark.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "--encoder",
                "random:resnet_tiny",
                "--suite",
                "demo",
                "--demo-root",
                str(demo_root),
                "--cache-dir",
                str(tmp_path / "c"),
                "--output",
                str(out),
                "--no-progress",
                "--workers",
                "0",
                "--tasks",
                "zeroshot",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "zero-shot tasks not applicable" in printed and "image-only" in printed
    assert not list(Path(out).glob("*/*.json"))


def test_submissions_expect_zero_shot_units_only_from_text_checkpoints():
    from benchmark.submissions import expected_units

    plain, with_zs = expected_units("demo"), expected_units("demo", zeroshot=True)
    assert not any(t.endswith(("zeroshot", "grounding")) for t, _, _ in plain)
    assert with_zs - plain == {
        (t, 100, 0) for t in ("chexpert_zeroshot", "rsna_zeroshot", "siim_zeroshot", "rsna_grounding", "siim_grounding")
    }


@pytest.mark.parametrize("method", ["gloria", "convirt"])
def test_gloria_and_convirt_checkpoints_score_zero_shot(method, demo_root, tiny_bert, tmp_path):  # noqa: F811
    from benchmark.cli import main
    from benchmark.results import read_results
    from recipes.pretraining.train import train

    ckpt = train(tiny_config(demo_root, tiny_bert, tmp_path / "run", method, max_steps=1))
    assert (
        main(
            [
                "--encoder",
                str(ckpt),
                "--suite",
                "demo",
                "--demo-root",
                str(demo_root),
                "--cache-dir",
                str(tmp_path / "c"),
                "--output",
                str(tmp_path / "out"),
                "--no-progress",
                "--workers",
                "0",
                "--tasks",
                "rsna_zeroshot,siim_grounding",
            ]
        )
        == 0
    )
    results = {r.unit.task: r for r in read_results(tmp_path / "out")}
    assert set(results) == {"rsna_zeroshot", "siim_grounding"}
    assert all(r.encoder["text_side"]["method"] == method for r in results.values())
