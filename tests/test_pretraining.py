"""Pretraining recipes (ConVIRT, GLoRIA, MGCA): losses against direct computations, data
preprocessing, short training runs on the demo MIMIC-CXR replica with a tiny ResNet and a
tiny BERT (tokenizer trained on the demo reports), resume, DDP equivalence, and scoring the
exported checkpoint with the harness."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.errors import DatasetNotFoundError
from recipes.mimic import load_pairs
from recipes.mimic.pair_set import pair_set, pair_set_summary, synthesis_prompt
from recipes.mimic.pairs import count_tokens
from recipes.pretraining import losses
from recipes.pretraining.data import (
    Captioner,
    ImageSpec,
    PairDataset,
    SourceSpec,
    StepBatches,
    caption_sentences,
    collate,
    load_pretraining_pairs,
    make_caption,
    mixed_is_synthetic,
    word_groups,
)
from recipes.pretraining.encoders import load_tokenizer, merge_subwords
from recipes.pretraining.methods import DEFAULTS, StepContext, build_method
from recipes.pretraining.train import TrainConfig, build_parser, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(
    arch="resnet_tiny",
    image_init="random",
    resize=40,
    crop=32,
    upsample=0,
    max_words=32,
    workers=0,
    progress=False,
    validate=False,
)
TINY_HP = {"proj_hidden": 32, "num_prototypes": 16}


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def tiny_bert(demo_root, tmp_path_factory):
    """A 2-layer, 32-wide random BERT and a WordPiece tokenizer trained on the demo reports."""
    from recipes.pretraining.tiny_text import write_tiny_bert

    return write_tiny_bert(demo_root, tmp_path_factory.mktemp("tiny-bert"))


def tiny_config(demo_root, bert, output, method, **kw) -> TrainConfig:
    hp = {**TINY_HP, **kw.pop("hparams", {})}
    base = dict(
        TINY,
        method=method,
        data_root=str(demo_root),
        text_encoder=str(bert),
        output=str(output),
        batch_size=8,
        hparams=hp,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def read_log(output) -> list[dict]:
    return [json.loads(line) for line in (Path(output) / "log.jsonl").read_text().splitlines() if line.strip()]


def step_losses(output) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(output) if "loss" in r}


# ------------------------------------------------------------------------------ losses
def test_text_tower_loads_quietly_with_one_line_and_refuses_incomplete_folders(tiny_bert, tmp_path, capfd):
    from safetensors.torch import load_file, save_file

    from benchmark.errors import ConfigError
    from recipes.pretraining.encoders import load_bert

    reference = load_file(str(tiny_bert / "model.safetensors"))
    lines = []
    model = load_bert(tiny_bert, num_layers=1, log=lines.append)  # the tiny BERT has 2 layers
    assert len(model.encoder.layer) == 1
    per_layer = sum(1 for k in reference if k.startswith("encoder.layer.1."))
    assert lines == [
        f"text tower: kept 1 of 2 BERT layers as the method specifies ({per_layer} tensors of layers 1-1 not loaded)"
    ]
    assert torch.equal(
        model.state_dict()["encoder.layer.0.output.dense.weight"], reference["encoder.layer.0.output.dense.weight"]
    )
    captured = capfd.readouterr()
    assert "UNEXPECTED" not in captured.out + captured.err and "Loading weights" not in captured.err
    lines.clear()
    load_bert(tiny_bert, log=lines.append)  # all layers: nothing to say
    assert lines == []

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    save_file(
        {k: v for k, v in reference.items() if not k.startswith("encoder.layer.0.output.")},
        str(broken / "model.safetensors"),
    )
    with pytest.raises(ConfigError, match=r"4 missing tensor\(s\)"):
        load_bert(broken, log=lines.append)
    save_file({**reference, "vision_model.patch.weight": torch.zeros(2)}, str(broken / "model.safetensors"))
    with pytest.raises(ConfigError, match="1 tensor\\(s\\) in the folder belong to no part of a BERT encoder"):
        load_bert(broken, log=lines.append)


def test_info_nce_matches_a_hand_computed_4x4_matrix():
    txt = torch.tensor([[0.9, 0.1, 0.3, 0.2], [0.2, 0.8, 0.1, 0.4], [0.1, 0.3, 0.7, 0.5], [0.4, 0.2, 0.2, 0.9]])
    txt = txt / txt.norm(dim=1, keepdim=True)
    img = torch.eye(4)  # s(i_m, t_n) = txt[n][m]
    tau = 0.07
    S = [[float(txt[n][m]) for n in range(4)] for m in range(4)]

    def ce_rows(M):
        return sum(-M[m][m] / tau + math.log(sum(math.exp(M[m][n] / tau) for n in range(4))) for m in range(4)) / 4

    ST = [[S[n][m] for n in range(4)] for m in range(4)]
    i2t, t2i = losses.info_nce(img, txt, tau)
    assert float(i2t) == pytest.approx(ce_rows(S), rel=1e-5)
    assert float(t2i) == pytest.approx(ce_rows(ST), rel=1e-5)
    brief = (
        sum(
            -math.log(math.exp(S[m][m] / tau) / sum(math.exp(S[m][n] / tau) for n in range(4)))
            - math.log(math.exp(S[m][m] / tau) / sum(math.exp(S[n][m] / tau) for n in range(4)))
            for m in range(4)
        )
        / 8
    )
    assert float((i2t + t2i) / 2) == pytest.approx(brief, rel=1e-5)


def test_gloria_local_loss_matches_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    B, D, T, R = 3, 4, 5, 6
    words, regions = torch.randn(B, D, T, generator=g), torch.randn(B, D, R, generator=g)
    cap_lens, t1, t2, t3 = [2, 3, 5], 4.0, 5.0, 10.0
    w, v = words.double().numpy(), regions.double().numpy()

    def softmax(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    sim = np.zeros((B, B))  # [image j, caption i]
    for i in range(B):
        n = cap_lens[i]
        for j in range(B):
            raw = w[i][:, :n].T @ v[j]  # (n, R) word-region dot products
            over_words = np.stack([softmax(raw[:, r]) for r in range(R)], axis=1)  # per region, over words
            total = 0.0
            for k in range(n):
                a = softmax(t1 * over_words[k])  # per word, over regions
                c = v[j] @ a
                cos = w[i][:, k] @ c / (np.linalg.norm(w[i][:, k]) * np.linalg.norm(c))
                total += math.exp(t2 * cos)
            sim[j, i] = t3 * math.log(total)

    def ce(M):
        return np.mean([-M[m, m] + math.log(np.exp(M[m]).sum()) for m in range(B)])

    l0, l1 = losses.gloria_local_loss(words, regions, cap_lens, t1, t2, t3)
    assert float(l0) == pytest.approx(ce(sim), rel=1e-4)
    assert float(l1) == pytest.approx(ce(sim.T), rel=1e-4)
    g0, g1 = losses.gloria_global_loss(words[:, :, 0], regions[:, :, 0], t3)
    cos = np.array(
        [
            [w[a][:, 0] @ v[b][:, 0] / np.linalg.norm(w[a][:, 0]) / np.linalg.norm(v[b][:, 0]) for b in range(B)]
            for a in range(B)
        ]
    )
    assert float(g0) == pytest.approx(ce(t3 * cos), rel=1e-4) and float(g1) == pytest.approx(ce(t3 * cos.T), rel=1e-4)


def test_sinkhorn_codes_have_the_right_marginals():
    g = torch.Generator().manual_seed(0)
    B, K = 12, 4
    scores = (
        torch.nn.functional.normalize(torch.randn(B, 8, generator=g), dim=1)
        @ torch.nn.functional.normalize(torch.randn(K, 8, generator=g), dim=1).t()
    )
    codes = losses.sinkhorn(scores, epsilon=0.05, iterations=3)
    assert codes.shape == (B, K) and torch.allclose(
        codes.sum(1), torch.ones(B), atol=1e-5
    )  # each sample: a distribution
    converged = losses.sinkhorn(scores, epsilon=0.5, iterations=300)
    assert torch.allclose(converged.sum(1), torch.ones(B), atol=1e-5)
    assert torch.allclose(converged.sum(0), torch.full((K,), B / K), atol=1e-3)  # equipartition over prototypes
    # distributed form: two ranks holding identical halves (all_reduce = x2) give the codes of the joint batch
    half = scores[: B // 2]
    joint = losses.sinkhorn(torch.cat([half, half]), 0.05, 3)
    ranked = losses.sinkhorn(half, 0.05, 3, all_reduce=lambda t: 2 * t, world_size=2)
    assert torch.allclose(ranked, joint[: B // 2], atol=1e-6)


def test_mgca_token_loss_uniform_weights_and_masking():
    g = torch.Generator().manual_seed(1)
    b, nw, npch, d = 2, 5, 4, 8
    words = torch.nn.functional.normalize(torch.randn(b, nw, d, generator=g), dim=-1)
    patches = torch.nn.functional.normalize(torch.randn(b, npch, d, generator=g), dim=-1)
    pad = torch.zeros(b, nw, dtype=torch.bool)
    pad[:, 3:] = True
    ww = losses.clipped_weights(torch.tensor([[0.2, 0.5, 0.3, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0, 0.0]]))
    assert torch.allclose(ww.sum(1), torch.ones(b)) and (ww[:, 3:] == 0).all()
    pw = torch.full((b, npch), 1 / npch)
    lw, lp = losses.mgca_token_loss(words, patches, ww, pw, pad, 0.1)
    # direct: patch->word attention never looks at padding words
    changed = words.clone()
    changed[:, 3:] = torch.nn.functional.normalize(torch.randn(b, 2, d, generator=g), dim=-1)
    _, lp2 = losses.mgca_token_loss(changed, patches, ww, pw, pad, 0.1)
    sim = patches @ words[:, :3].transpose(1, 2) / 0.1
    out = torch.nn.functional.normalize(sim.softmax(-1) @ words[:, :3], dim=-1)
    s = patches @ out.transpose(1, 2) / 0.1
    direct = (
        sum(
            (-torch.log_softmax(s[i], 1).diagonal() * pw[i]).sum()
            + (-torch.log_softmax(s[i].t(), 1).diagonal() * pw[i]).sum()
            for i in range(b)
        )
        / b
        / 2
    )
    assert float(lp) == pytest.approx(float(direct), rel=1e-5) and float(lp2) == pytest.approx(float(lp), rel=1e-5)
    assert torch.isfinite(lw)


# ------------------------------------------------------------------------------ data
def test_mgca_caption_preprocessing():
    sents = caption_sentences("1. No acute process. 2. Mild cardiomegaly.", "The lungs are clear.\nNo effusion. Ok.")
    assert sents == ["no acute process", "mild cardiomegaly", "the lungs are clear", "no effusion"]
    assert make_caption("Clear.", "Normal.") == ("", 0)  # one-token sentences dropped -> study dropped (< 3 tokens)
    assert make_caption("Café señal bien.", None) == ("caf seal bien", 3)


def test_word_groups_merge_subwords_like_gloria():
    slots, words = word_groups(["[CLS]", "e", "##n", "##l", "heart", "[SEP]", "[PAD]", "[PAD]"])
    assert words == ["[CLS]", "enl", "heart", "[SEP]"] and slots == [0, 1, 1, 1, 2, 3, 8, 8]
    feats = torch.arange(8, dtype=torch.float).view(1, 8, 1)
    merged = merge_subwords(feats, torch.tensor([slots]))
    assert merged[0, :, 0].tolist() == [0, 1 + 2 + 3, 4, 5, 0, 0, 0, 0]


def test_pairs_splits_and_image_sources(demo_root, tmp_path):
    real = load_pretraining_pairs(demo_root)
    assert set(real.subset) == {"train", "valid"} and set(real.ViewPosition) <= {"PA", "AP"}
    assert set(real[real.subset == "valid"].split) <= {"validate", "test"}
    assert (real.caption_tokens >= 3).all() and (real.image_kind == "real").all()
    synth = make_synthetic_root(real, tmp_path / "synth")
    s = load_pretraining_pairs(demo_root, SourceSpec("synthetic", str(synth), generator="toy"))
    assert (s.image_kind == "synthetic").all() and s.image_path.str.startswith(str(synth)).all()
    assert (s.caption == real.caption).all()  # captions stay the real reports
    m = load_pretraining_pairs(demo_root, SourceSpec("mixed", str(synth), ratio=0.5, generator="toy"))
    expected = [mixed_is_synthetic(d, 0.5) for d in m.dicom_id]
    assert list(m.image_kind == "synthetic") == expected and 0 < sum(expected) < len(expected)


def test_synthesis_prompt_is_the_impression_else_impression_and_findings():
    assert synthesis_prompt("No acute process.", "Lungs clear.") == ("No acute process.", "impression")
    assert synthesis_prompt(" As above.\n", "Heart size normal.") == (
        "As above. Heart size normal.",
        "impression+findings",
    )
    assert synthesis_prompt("", "Small left effusion.") == ("Small left effusion.", "impression+findings")
    assert synthesis_prompt(None, None) == ("", "impression+findings")


def test_pair_set_hash_covers_ids_and_subsets_in_any_order():
    import hashlib

    import pandas as pd

    frame = pd.DataFrame({"dicom_id": ["b", "a"], "subset": ["valid", "train"]})
    expected = hashlib.sha256(b"a,train\nb,valid\n").hexdigest()
    assert pair_set_summary(frame) == {"train": 1, "valid": 1, "pairs": 2, "sha256": expected}
    assert pair_set_summary(frame.iloc[::-1]) == pair_set_summary(frame)
    moved = frame.assign(subset=["train", "train"])
    assert pair_set_summary(moved)["sha256"] != expected


def test_real_synthetic_and_mixed_runs_use_one_pair_set(demo_root, tmp_path):
    real = load_pretraining_pairs(demo_root)
    # pairs whose IMPRESSION has < 3 tokens but whose caption qualifies through FINDINGS stay in
    short = real[real.impression.map(count_tokens) < 3]
    assert len(short) > 0 and len(real) == len(short) + int((real.impression.map(count_tokens) >= 3).sum())
    assert len(load_pairs(demo_root)) < len(real)  # the IMPRESSION-only rule would have dropped them
    joined = [" ".join(t for t in (i.strip(), f.strip()) if t) for i, f in zip(short.impression, short.findings)]
    assert list(short.prompt) == joined and (short.prompt_section == "impression+findings").all()
    assert (short.prompt.map(count_tokens) >= 3).all()
    synth = make_synthetic_root(real, tmp_path / "synth")
    for source in (
        SourceSpec("synthetic", str(synth), generator="toy"),
        SourceSpec("mixed", str(synth), ratio=0.5, generator="toy"),
    ):
        frame = load_pretraining_pairs(demo_root, source)
        assert list(frame.dicom_id) == list(real.dicom_id) and list(frame.subset) == list(real.subset), source.kind
        assert pair_set_summary(frame) == pair_set_summary(real) == pair_set_summary(pair_set(demo_root))
    assert (
        load_pretraining_pairs(demo_root, SourceSpec("synthetic", str(synth))).loc[short.index, "image_kind"]
        == "synthetic"
    ).all()


def test_a_synthetic_root_that_misses_a_pair_is_refused(demo_root, tmp_path):
    real = load_pretraining_pairs(demo_root)
    synth = make_synthetic_root(real, tmp_path / "synth")
    victim = real[real.impression.map(count_tokens) < 3].iloc[0]  # a pair the old IMPRESSION-only synthesis skipped
    rel = Path(victim.image_path).relative_to(Path(victim.image_path).parents[4])
    (synth / "mimic-cxr-jpg" / "2.0.0" / rel).with_name("synthetic.jpg").unlink()
    n_study = int((real.study_id == victim.study_id).sum())
    with pytest.raises(
        DatasetNotFoundError,
        match=rf"does not cover this run's pair set: {n_study} of the {len(real)} pairs.*{victim.dicom_id}",
    ):
        load_pretraining_pairs(demo_root, SourceSpec("synthetic", str(synth), generator="toy"))
    none_drawn = load_pretraining_pairs(demo_root, SourceSpec("mixed", str(synth), ratio=0.0, generator="toy"))
    assert len(none_drawn) == len(real) and (none_drawn.image_kind == "real").all()


def test_real_and_synthetic_runs_print_and_record_the_same_pair_set(demo_root, tiny_bert, tmp_path, capsys):
    synth = make_synthetic_root(load_pretraining_pairs(demo_root), tmp_path / "synth")
    expected = pair_set_summary(pair_set(demo_root))
    lines, records = {}, {}
    for kind in ("real", "synthetic"):
        extra = {} if kind == "real" else dict(image_source="synthetic", synthetic_root=str(synth), generator="toy")
        path = train(tiny_config(demo_root, tiny_bert, tmp_path / kind, "convirt", max_steps=1, **extra))
        lines[kind] = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if "pair set:" in line]
        records[kind] = torch.load(path, weights_only=True)["medvlp"]
    line = (
        f"pair set: {expected['train']} train + {expected['valid']} valid = {expected['pairs']} pairs, "
        f"sha256 {expected['sha256'][:12]}"
    )
    assert lines["real"] == [line + "; 0 synthetic images"]
    assert lines["synthetic"] == [line + f"; {expected['pairs']} synthetic images"]
    assert records["real"]["pair_set"] == records["synthetic"]["pair_set"] == expected


def make_synthetic_root(frame, root: Path) -> Path:
    """A toy synthetic set in the MIMIC-CXR-JPG layout: one (inverted) image per study."""
    from PIL import Image

    from benchmark.images import read_grey

    for row in frame.drop_duplicates("study_id").itertuples():
        rel = Path(row.image_path).relative_to(Path(row.image_path).parents[4])
        target = root / "mimic-cxr-jpg" / "2.0.0" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - read_grey(row.image_path)).save(target.with_name("synthetic.jpg"))
    return root


def test_batches_are_deterministic_and_rank_partitioned():
    one = [b for b in StepBatches(20, 8, seed=3, epoch=1)]
    r0 = [b for b in StepBatches(20, 4, world=2, rank=0, seed=3, epoch=1)]
    r1 = [b for b in StepBatches(20, 4, world=2, rank=1, seed=3, epoch=1)]
    assert [x + y for x, y in zip(r0, r1)] == one and len(one) == 2
    assert [b for b in StepBatches(20, 8, seed=3, epoch=1, start=1)] == one[1:]


def test_cli_help_documents_every_option():
    parser = build_parser()
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings


# ------------------------------------------------------------------------------ training
@pytest.mark.parametrize("method", ["convirt", "gloria", "mgca"])
def test_loss_decreases_on_a_fixed_batch(method, demo_root, tiny_bert):
    torch.manual_seed(0)
    hp = {
        k: v
        for k, v in DEFAULTS[method].items()
        if k
        in (
            "temperature",
            "local_temperature",
            "proto_temperature",
            "temp1",
            "temp2",
            "temp3",
            "last_n_layers",
            "text_layers",
            "emb_dim",
        )
    }
    model = build_method(
        method,
        arch="resnet_tiny",
        text_encoder=str(tiny_bert),
        image_init="random",
        upsample=0,
        **hp,
        **TINY_HP,
        freeze_prototypes_epochs=0,
    )
    frame = load_pretraining_pairs(demo_root)
    train_frame = frame[frame.subset == "train"].reset_index(drop=True)
    ds = PairDataset(train_frame, Captioner(load_tokenizer(tiny_bert), 32), ImageSpec(40, 32), train=False)
    batch = collate([ds[(i, 0)] for i in range(6)])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, foreach=True)
    history = []
    for step in range(15):
        out = model(batch, StepContext(step=step))
        opt.zero_grad()
        out["loss"].backward()
        model.after_backward(epoch=1)
        opt.step()
        history.append(float(out["loss"].detach()))
    assert all(math.isfinite(h) for h in history)
    assert np.mean(history[-3:]) < 0.8 * np.mean(history[:3]), history


def test_mgca_freezes_prototypes_in_the_first_epoch(demo_root, tiny_bert):
    model = build_method("mgca", arch="resnet_tiny", text_encoder=str(tiny_bert), upsample=0, **TINY_HP)
    model.prototype_layer.weight.grad = torch.ones_like(model.prototype_layer.weight)
    model.after_backward(epoch=0)
    assert model.prototype_layer.weight.grad is None


class Interrupt(Exception):
    pass


class KillAt:
    def __init__(self, step):
        self.step = step

    def on_step(self, step, logs):
        if step == self.step:
            raise Interrupt


def test_kill_and_resume_continues_from_the_saved_step(demo_root, tiny_bert, tmp_path):
    full = tiny_config(demo_root, tiny_bert, tmp_path / "full", "convirt", max_steps=5, save_every=2)
    train(full)
    killed = tiny_config(demo_root, tiny_bert, tmp_path / "killed", "convirt", max_steps=5, save_every=2)
    with pytest.raises(Interrupt):
        train(killed, hooks=KillAt(3))  # dies after step 3; last save at step 2
    saved = torch.load(tmp_path / "killed" / "resume.pt", weights_only=True)
    assert saved["state"]["step"] == 2
    train(killed)
    a, b = step_losses(tmp_path / "full"), step_losses(tmp_path / "killed")
    assert sorted(b) == [1, 2, 3, 4, 5]
    for s in range(1, 6):
        assert b[s] == pytest.approx(a[s], rel=1e-4, abs=1e-5)
    wa = torch.load(tmp_path / "full" / "last.ckpt", weights_only=True)["state_dict"]
    wb = torch.load(tmp_path / "killed" / "last.ckpt", weights_only=True)["state_dict"]
    for k in wa:
        if wa[k].is_floating_point():
            assert torch.allclose(wa[k], wb[k], atol=1e-5), k


@pytest.fixture(scope="module")
def mgca_synthetic_run(demo_root, tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("mgca-synth")
    synth = make_synthetic_root(load_pretraining_pairs(demo_root), out / "synthetic-set")
    cfg = tiny_config(
        demo_root,
        tiny_bert,
        out / "run",
        "mgca",
        image_source="synthetic",
        synthetic_root=str(synth),
        generator="toy",
        max_steps=3,
        epochs=2,
    )
    return train(cfg)


def test_checkpoint_loads_every_backbone_tensor_and_records_the_run(mgca_synthetic_run):
    from models.architectures import build_arch
    from models.loading import load_encoder

    path = mgca_synthetic_run
    assert path.name == "mgca-toy-resnet_tiny.ckpt"
    loaded = load_encoder(str(path))
    report = loaded.load_report
    assert loaded.method_hint == "mgca" and report["prefix"] == "img_encoder_q.model."
    assert (
        report["n_loaded"]
        == report["n_expected"]
        == len([k for k in build_arch("resnet_tiny").state_dict() if not k.endswith("num_batches_tracked")])
    )
    ckpt = torch.load(path, weights_only=True)
    sd = ckpt["state_dict"]
    for k, v in loaded.encoder.state_dict().items():
        assert torch.equal(v, sd["img_encoder_q.model." + k]), k
    assert any(k.startswith("text_encoder_q.model.") for k in sd) and "prototype_layer.weight" in sd
    assert any(k.startswith("img_encoder_q.global_embed.") for k in sd)
    rec = ckpt["medvlp"]
    assert rec["method"] == "mgca" and rec["image_source"] == "synthetic" and rec["generator"] == "toy"
    assert rec["pairs"]["synthetic_images"] == rec["pairs"]["train"] + rec["pairs"]["valid"]
    assert rec["heads"]["prototypes"]["count"] == 16 and rec["text_encoder_config"]["num_hidden_layers"] == 2
    assert ckpt["hyper_parameters"]["num_prototypes"] == 16 and ckpt["hyper_parameters"]["local_temperature"] == 0.1
    assert Path(rec["tokenizer_dir"], "tokenizer_config.json").is_file()


def test_checkpoint_scores_on_the_demo_suite(mgca_synthetic_run, demo_root, tmp_path):
    from benchmark.cli import main
    from benchmark.results import read_results

    args = [
        "--encoder",
        str(mgca_synthetic_run),
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
        "rsna_cls",
        "--fractions",
        "100",
    ]
    assert main(args) == 0
    (result,) = read_results(tmp_path / "out")
    assert result.unit.task == "rsna_cls" and 0.0 <= result.value <= 1.0
    assert result.encoder["arch"] == "resnet_tiny"


@pytest.mark.parametrize("method", ["gloria"])
def test_real_images_run_and_export(method, demo_root, tiny_bert, tmp_path):
    path = train(tiny_config(demo_root, tiny_bert, tmp_path / method, method, max_steps=2))
    assert path.is_file() and path.name == f"{method}-real-resnet_tiny.ckpt"
    ckpt = torch.load(path, weights_only=True)
    sd = ckpt["state_dict"]
    assert ckpt["medvlp"]["preset"]["name"] == "gloria" and ckpt["medvlp"]["preset"]["text_input"] == "sentence"
    assert ckpt["hyper_parameters"]["sentence_stop_words"] == 5
    assert any(k.startswith("gloria.img_encoder.model.layer1.") for k in sd)
    assert "gloria.img_encoder.local_embedder.weight" in sd


# ------------------------------------------------------------------------------ DDP
@pytest.mark.ddp
def test_two_process_ddp_matches_single_process_on_the_same_global_batch(demo_root, tiny_bert, tmp_path):
    """MGCA (distributed Sinkhorn) with 2 gloo ranks x 4 pairs vs 1 process x 8 pairs split into
    2 virtual ranks: identical losses."""
    common = [
        "--method",
        "mgca",
        "--data-root",
        str(demo_root),
        "--text-encoder",
        str(tiny_bert),
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
        "--max-steps",
        "3",
        "--workers",
        "0",
        "--no-progress",
        "--no-validate",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--hp",
        "proj_hidden=32",
        "--hp",
        "num_prototypes=16",
        "--hp",
        "freeze_prototypes_epochs=0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "recipes.pretraining",
            *common,
            "--batch-size",
            "4",
            "--output",
            str(tmp_path / "ddp"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    from recipes.pretraining.train import main

    assert main([*common, "--batch-size", "8", "--virtual-ranks", "2", "--output", str(tmp_path / "single")]) == 0
    a, b = step_losses(tmp_path / "ddp"), step_losses(tmp_path / "single")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    assert a[1] == pytest.approx(b[1], rel=1e-5)
    for s in (2, 3):
        assert a[s] == pytest.approx(b[s], rel=1e-3)


def test_chain_plans_synthesis_pretraining_benchmark(tmp_path, capsys):
    from recipes.pretraining.chain import main as chain_main

    assert (
        chain_main(
            [
                "--method",
                "gloria",
                "--generator",
                "roentgen",
                "--data-root",
                "/data",
                "--text-encoder",
                "/bert",
                "--work",
                str(tmp_path),
                "--dry-run",
                "--",
                "--arch",
                "resnet50",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "recipes.synthesis generate" in out and "--preset roentgen" in out and "--image-source synthetic" in out
    assert f"--encoder {tmp_path}/pretrain/gloria-roentgen-resnet50.ckpt" in out


# ------------------------------------------------------------------------------ presets
def test_presets_name_their_sources_and_settings():
    from recipes.pretraining.chain import METHOD_TITLES
    from recipes.pretraining.presets import PRESET_NAMES, PRESETS

    assert PRESET_NAMES == ("convirt", "convirt-original", "gloria", "gloria-caption", "mgca")
    assert tuple(METHOD_TITLES) == PRESET_NAMES  # the chain offers every preset
    assert PRESETS["convirt"].source.startswith("HKU-MedAI/MGCA@") and PRESETS["mgca"].source.startswith(
        "HKU-MedAI/MGCA@"
    )
    assert PRESETS["convirt-original"].source.startswith("edreisMD/ConVIRT-pytorch@")
    assert PRESETS["gloria"].source.startswith("marshuang80/gloria@") and PRESETS["gloria-caption"].source.startswith(
        "marshuang80/gloria@"
    )
    original = PRESETS["convirt-original"].hparams
    assert (original["emb_dim"], original["temperature"], original["i2t_weight"], original["t2i_weight"]) == (
        512,
        0.1,
        0.75,
        0.25,
    )
    assert (original["optimizer"], original["lr"], original["weight_decay"], original["batch_size"]) == (
        "adam",
        1e-4,
        1e-6,
        32,
    )
    assert (
        original["text_layers"],
        original["freeze_text_layers"],
        original["text_pooling"],
        original["projection"],
    ) == (0, 6, "mean", "linear_relu")
    assert (original["text_input"], PRESETS["convirt-original"].image_init, PRESETS["convirt-original"].upsample) == (
        "sentence",
        "random",
        0,
    )
    assert all(p.notes for p in PRESETS.values())


def test_convirt_preset_resolves_exactly_as_before_presets(tmp_path):
    cfg = TrainConfig(method="convirt", data_root="d", text_encoder="t", output=str(tmp_path)).resolved()
    assert (cfg.batch_size, cfg.epochs, cfg.lr, cfg.weight_decay, cfg.grad_clip, cfg.patience) == (
        72,
        50,
        2e-5,
        0.05,
        0.0,
        5,
    )
    assert (cfg.image_init, cfg.max_words, cfg.upsample) == ("imagenet", 112, 299)
    assert cfg.hparams == {
        "betas": (0.9, 0.999),
        "optimizer": "adamw",
        "scheduler": "cosine_warmup",
        "warmup": 0.4,
        "min_lr": 1e-8,
        "text_layers": 6,
        "emb_dim": 128,
        "proj_hidden": 2048,
        "temperature": 0.07,
        "text_input": "caption",
        "sentence_stop_words": 0,
    }
    assert cfg.export_name() == "convirt-real-resnet50.ckpt"


def test_gloria_presets_official_sentence_and_v1_init_or_the_mgca_caption(tmp_path):
    gloria = TrainConfig(method="gloria", data_root="d", text_encoder="t", output=str(tmp_path)).resolved()
    assert (
        gloria.image_init,
        gloria.max_words,
        gloria.hparams["text_input"],
        gloria.hparams["sentence_stop_words"],
    ) == ("imagenet-v1", 97, "sentence", 5)
    assert (gloria.batch_size, gloria.lr, gloria.grad_clip, gloria.hparams["optimizer"]) == (48, 5e-5, 0.25, "adam")
    caption = TrainConfig(method="gloria-caption", data_root="d", text_encoder="t", output=str(tmp_path)).resolved()
    assert (caption.image_init, caption.max_words, caption.hparams["text_input"]) == ("imagenet-v1", 112, "caption")
    assert caption.export_name() == "gloria-caption-real-resnet50.ckpt"
    overridden = TrainConfig(
        method="gloria",
        data_root="d",
        text_encoder="t",
        output=str(tmp_path),
        image_init="imagenet",
        max_words=112,
        hparams={"text_input": "caption"},
    ).resolved()
    assert (overridden.image_init, overridden.max_words, overridden.hparams["text_input"]) == (
        "imagenet",
        112,
        "caption",
    )
    from benchmark.errors import ConfigError

    with pytest.raises(
        ConfigError, match="--method must be one of convirt, convirt-original, gloria, gloria-caption, mgca"
    ):
        TrainConfig(method="clip", data_root="d", text_encoder="t").resolved()
    with pytest.raises(ConfigError, match="text_input must be one of caption, sentence"):
        TrainConfig(method="gloria", data_root="d", text_encoder="t", hparams={"text_input": "report"}).resolved()


def test_imagenet_v1_init_reads_torchvisions_v1_file(tmp_path, monkeypatch):
    """GLoRIA's ``pretrained=True`` is torchvision's IMAGENET1K_V1 file; ``imagenet`` is the default (V2)."""
    import torchvision

    from benchmark.errors import CheckpointError
    from models.formats.imagenet import torchvision_weights
    from recipes.pretraining.encoders import build_image_model, image_init_spec

    assert image_init_spec("resnet50", "imagenet-v1") == "imagenet:resnet50@IMAGENET1K_V1"
    assert (
        image_init_spec("resnet50", "imagenet") == "imagenet:resnet50"
        and image_init_spec("resnet50", "x.ckpt") == "x.ckpt"
    )
    assert torchvision_weights("resnet50", "IMAGENET1K_V1").url.endswith("/resnet50-0676ba61.pth")
    assert torchvision_weights("resnet50", None).url.endswith("/resnet50-11ad3fa6.pth")  # the default is V2
    torch.manual_seed(3)
    v1 = torchvision.models.resnet50().state_dict()
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(v1, folder / "resnet50-0676ba61.pth")
    monkeypatch.setenv("MEDVLP_IMAGENET_WEIGHTS", str(folder))
    enc = build_image_model("resnet50", "imagenet-v1")
    got = enc.state_dict()
    assert torch.equal(got["conv1.weight"], v1["conv1.weight"]) and torch.equal(
        got["layer4.2.bn3.running_var"], v1["layer4.2.bn3.running_var"]
    )
    with pytest.raises(CheckpointError, match="resnet50-11ad3fa6.pth"):  # the V2 file is not there
        build_image_model("resnet50", "imagenet")


def test_gloria_sentence_list_stops_when_the_word_count_equals_5():
    from recipes.pretraining.data import stop_at_word_count

    assert stop_at_word_count(["no acute process", "lungs clear", "heart normal"], 5) == [
        "no acute process",
        "lungs clear",
    ]
    assert stop_at_word_count(["lungs clear", "no acute findings seen"], 5) == [
        "lungs clear",
        "no acute findings seen",
    ]  # 2, 6: never 5
    assert stop_at_word_count(["a b c d e", "f g"], 5) == ["a b c d e"]
    assert stop_at_word_count(["a b c d e", "f g"], 0) == ["a b c d e", "f g"]


def test_sentence_input_draws_one_report_sentence_per_step(demo_root, tiny_bert):
    from recipes.pretraining.data import TextInput

    frame = load_pretraining_pairs(demo_root)
    ds = PairDataset(
        frame, Captioner(load_tokenizer(tiny_bert), 32), ImageSpec(40, 32), train=True, text=TextInput("sentence")
    )
    many = [i for i, s in enumerate(ds.sentences) if len(s) >= 3]
    assert many
    i = many[0]
    assert ds.sentences[i] == caption_sentences(frame.impression[i], frame.findings[i])
    drawn = [ds.text_of(i, seed) for seed in range(60)]
    assert set(drawn) <= set(ds.sentences[i]) and len(set(drawn)) == len(ds.sentences[i])  # uniform over the sentences
    assert drawn == [ds.text_of(i, seed) for seed in range(60)]  # a function of (seed, pair)
    assert all(d != ds.captions[i] for d in drawn)
    caption = PairDataset(frame, Captioner(load_tokenizer(tiny_bert), 32), ImageSpec(40, 32), train=True)
    assert caption.text_of(i, 5) == frame.caption[i] and caption.sentences is None
    gloria = PairDataset(
        frame, Captioner(load_tokenizer(tiny_bert), 32), ImageSpec(40, 32), train=True, text=TextInput("sentence", 5)
    )
    for k, sentences in enumerate(gloria.sentences):
        counts = np.cumsum([len(s.split()) for s in sentences])
        assert 5 not in counts[:-1] and sentences == ds.sentences[k][: len(sentences)]


def test_convirt_original_heads_frozen_layers_pooling_and_weighted_loss(tiny_bert):
    from recipes.pretraining.methods.convirt import masked_mean
    from recipes.pretraining.presets import PRESETS

    hp = {**PRESETS["convirt-original"].hparams, "freeze_text_layers": 1}
    model = build_method(
        "convirt", arch="resnet_tiny", text_encoder=str(tiny_bert), image_init="random", upsample=0, **hp
    )
    img_head, txt_head = model.img_encoder.projection, model.text_encoder.projection
    assert [type(m).__name__ for m in img_head] == ["Linear", "ReLU", "Linear"] and not hasattr(
        model.img_encoder, "global_embed"
    )
    width = model.img_encoder.feature_dim
    assert (img_head[0].in_features, img_head[0].out_features, img_head[2].out_features) == (width, width, 512)
    assert (txt_head[0].in_features, txt_head[0].out_features, txt_head[2].out_features) == (32, 32, 512)
    layers = model.text_encoder.model.encoder.layer
    assert not any(p.requires_grad for p in layers[0].parameters()) and all(
        p.requires_grad for p in layers[1].parameters()
    )
    states = torch.arange(24, dtype=torch.float).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert torch.equal(masked_mean(states, mask), torch.stack([states[0, :2].mean(0), states[1, 0]]))
    img = F_normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]))
    txt = F_normalize(torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]))
    s = img @ txt.t() / 0.1
    idx = torch.arange(3)
    i2t = -torch.log_softmax(s, dim=1)[idx, idx].mean()
    t2i = -torch.log_softmax(s.t(), dim=1)[idx, idx].mean()
    out = model.chunk_losses({"img": img, "txt": txt}, StepContext())
    assert float(out["loss"]) == pytest.approx(float(0.75 * i2t + 0.25 * t2i), rel=1e-6)
    assert float(out["loss_i2t"]) == pytest.approx(float(i2t), rel=1e-6)
    rec = model.record()
    assert rec["image_projection"]["key"] == "img_encoder.projection" and rec["frozen_text_layers"] == 1


def F_normalize(x):
    return torch.nn.functional.normalize(x, dim=1)


def test_convirt_original_text_projection_no_grad_option(demo_root, tiny_bert):
    from recipes.pretraining.presets import PRESETS

    frame = load_pretraining_pairs(demo_root)
    ds = PairDataset(frame, Captioner(load_tokenizer(tiny_bert), 32), ImageSpec(40, 32), train=False)
    batch = collate([ds[(i, 0)] for i in range(4)])
    grads = {}
    for flag in (False, True):
        torch.manual_seed(0)
        model = build_method(
            "convirt",
            arch="resnet_tiny",
            text_encoder=str(tiny_bert),
            image_init="random",
            upsample=0,
            **{**PRESETS["convirt-original"].hparams, "freeze_text_layers": 0, "text_projection_no_grad": flag},
        )
        model(batch, StepContext())["loss"].backward()
        grads[flag] = (
            model.text_encoder.projection[0].weight.grad,
            model.text_encoder.model.encoder.layer[-1].output.dense.weight.grad,
            model.img_encoder.projection[0].weight.grad,
        )
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads[False])
    assert (
        grads[True][0] is None and grads[True][1] is None
    )  # the original's torch.no_grad(): the text side never learns
    assert grads[True][2] is not None and float(grads[True][2].abs().sum()) > 0


def test_epoch_cosine_lr_is_the_original_convirt_schedule():
    from recipes.pretraining.train import epoch_cosine_lr

    assert [epoch_cosine_lr(e, 4, 1e-4, 10) for e in (0, 9, 10)] == [1e-4, 1e-4, 1e-4]
    assert epoch_cosine_lr(12, 4, 1e-4, 10) == pytest.approx(0.5e-4)  # 2 of 4 scheduler steps
    assert epoch_cosine_lr(14, 4, 1e-4, 10) == pytest.approx(0.0, abs=1e-20)
    assert epoch_cosine_lr(18, 4, 1e-4, 10) == pytest.approx(1e-4)  # periodic (period 2 x T_max), as CosineAnnealingLR
    torch_lrs = []
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0)
    for epoch in range(20):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if epoch >= 10:
            sched.step()
    assert [epoch_cosine_lr(e, 4, 1e-4, 10) for e in range(20)] == pytest.approx(torch_lrs, abs=1e-12)


def test_convirt_original_run_exports_a_named_checkpoint(demo_root, tiny_bert, tmp_path):
    from models.loading import load_encoder

    path = train(
        tiny_config(
            demo_root, tiny_bert, tmp_path / "orig", "convirt-original", max_steps=2, hparams={"freeze_text_layers": 1}
        )
    )
    assert path.name == "convirt-original-real-resnet_tiny.ckpt"
    ckpt = torch.load(path, weights_only=True)
    rec = ckpt["medvlp"]
    assert (
        rec["method"] == "convirt"
        and rec["preset"]["name"] == "convirt-original"
        and rec["preset"]["text_input"] == "sentence"
    )
    assert rec["preset"]["source"].startswith("edreisMD/ConVIRT-pytorch@") and rec["image_init"] == "random"
    assert ckpt["hyper_parameters"]["temperature"] == 0.1 and ckpt["hyper_parameters"]["batch_size"] == 8
    assert "img_encoder.projection.2.weight" in ckpt["state_dict"] and rec["heads"]["loss_weights"] == {
        "image_to_text": 0.75,
        "text_to_image": 0.25,
    }
    loaded = load_encoder(str(path))
    assert (
        loaded.load_report["prefix"] == "img_encoder.model."
        and loaded.load_report["n_loaded"] == loaded.load_report["n_expected"]
    )
    lrs = [r["lr"] for r in read_log(tmp_path / "orig") if "lr" in r]
    assert lrs == [1e-4, 1e-4]  # epoch 0 of the original schedule: constant
    from benchmark.errors import BenchmarkError
    from benchmark.zeroshot.text_side import load_vision_language

    with pytest.raises(BenchmarkError, match=r"lacks its image projection \(img_encoder.global_embed"):
        load_vision_language(loaded)  # the MGCA-layout zero-shot scorer refuses, never misreads, these heads
