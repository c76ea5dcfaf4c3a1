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
from recipes.pretraining.data import (Captioner, ImageSpec, PairDataset, SourceSpec, StepBatches, caption_sentences, collate,
                                      load_pretraining_pairs, make_caption, mixed_is_synthetic, word_groups)
from recipes.pretraining.encoders import load_tokenizer, merge_subwords
from recipes.pretraining.methods import DEFAULTS, StepContext, build_method
from recipes.pretraining.train import TrainConfig, build_parser, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(arch="resnet_tiny", image_init="random", resize=40, crop=32, upsample=0, max_words=32, workers=0, progress=False,
            validate=False)
TINY_HP = {"proj_hidden": 32, "num_prototypes": 16}


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def tiny_bert(demo_root, tmp_path_factory):
    """A 2-layer, 32-wide random BERT and a WordPiece tokenizer trained on the demo reports."""
    from recipes.pretraining.tiny_text import write_tiny_bert

    return write_tiny_bert(demo_root, tmp_path_factory.mktemp("tiny-bert"))


def tiny_config(demo_root, bert, output, method, **kw) -> TrainConfig:
    hp = {**TINY_HP, **kw.pop("hparams", {})}
    base = dict(TINY, method=method, data_root=str(demo_root), text_encoder=str(bert), output=str(output), batch_size=8,
                hparams=hp, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def read_log(output) -> list[dict]:
    return [json.loads(line) for line in (Path(output) / "log.jsonl").read_text().splitlines() if line.strip()]


def step_losses(output) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(output) if "loss" in r}


# ------------------------------------------------------------------------------ losses
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
    brief = sum(-math.log(math.exp(S[m][m] / tau) / sum(math.exp(S[m][n] / tau) for n in range(4)))
                - math.log(math.exp(S[m][m] / tau) / sum(math.exp(S[n][m] / tau) for n in range(4))) for m in range(4)) / 8
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
    cos = np.array([[w[a][:, 0] @ v[b][:, 0] / np.linalg.norm(w[a][:, 0]) / np.linalg.norm(v[b][:, 0]) for b in range(B)] for a in range(B)])
    assert float(g0) == pytest.approx(ce(t3 * cos), rel=1e-4) and float(g1) == pytest.approx(ce(t3 * cos.T), rel=1e-4)


def test_sinkhorn_codes_have_the_right_marginals():
    g = torch.Generator().manual_seed(0)
    B, K = 12, 4
    scores = torch.nn.functional.normalize(torch.randn(B, 8, generator=g), dim=1) @ torch.nn.functional.normalize(torch.randn(K, 8, generator=g), dim=1).t()
    codes = losses.sinkhorn(scores, epsilon=0.05, iterations=3)
    assert codes.shape == (B, K) and torch.allclose(codes.sum(1), torch.ones(B), atol=1e-5)  # each sample: a distribution
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
    direct = sum((-torch.log_softmax(s[i], 1).diagonal() * pw[i]).sum() + (-torch.log_softmax(s[i].t(), 1).diagonal() * pw[i]).sum()
                 for i in range(b)) / b / 2
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
    assert synthesis_prompt(" As above.\n", "Heart size normal.") == ("As above. Heart size normal.", "impression+findings")
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
    for source in (SourceSpec("synthetic", str(synth), generator="toy"), SourceSpec("mixed", str(synth), ratio=0.5, generator="toy")):
        frame = load_pretraining_pairs(demo_root, source)
        assert list(frame.dicom_id) == list(real.dicom_id) and list(frame.subset) == list(real.subset), source.kind
        assert pair_set_summary(frame) == pair_set_summary(real) == pair_set_summary(pair_set(demo_root))
    assert (load_pretraining_pairs(demo_root, SourceSpec("synthetic", str(synth))).loc[short.index, "image_kind"] == "synthetic").all()


def test_a_synthetic_root_that_misses_a_pair_is_refused(demo_root, tmp_path):
    real = load_pretraining_pairs(demo_root)
    synth = make_synthetic_root(real, tmp_path / "synth")
    victim = real[real.impression.map(count_tokens) < 3].iloc[0]  # a pair the old IMPRESSION-only synthesis skipped
    rel = Path(victim.image_path).relative_to(Path(victim.image_path).parents[4])
    (synth / "mimic-cxr-jpg" / "2.0.0" / rel).with_name("synthetic.jpg").unlink()
    n_study = int((real.study_id == victim.study_id).sum())
    with pytest.raises(DatasetNotFoundError, match=rf"does not cover this run's pair set: {n_study} of the {len(real)} pairs.*{victim.dicom_id}"):
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
    line = (f"pair set: {expected['train']} train + {expected['valid']} valid = {expected['pairs']} pairs, "
            f"sha256 {expected['sha256'][:12]}")
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
    hp = {k: v for k, v in DEFAULTS[method].items() if k in ("temperature", "local_temperature", "proto_temperature", "temp1", "temp2",
                                                              "temp3", "last_n_layers", "text_layers", "emb_dim")}
    model = build_method(method, arch="resnet_tiny", text_encoder=str(tiny_bert), image_init="random", upsample=0, **hp,
                         **TINY_HP, freeze_prototypes_epochs=0)
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
    cfg = tiny_config(demo_root, tiny_bert, out / "run", "mgca", image_source="synthetic", synthetic_root=str(synth),
                      generator="toy", max_steps=3, epochs=2)
    return train(cfg)


def test_checkpoint_loads_every_backbone_tensor_and_records_the_run(mgca_synthetic_run):
    from models.architectures import build_arch
    from models.loading import load_encoder

    path = mgca_synthetic_run
    assert path.name == "mgca-toy-resnet_tiny.ckpt"
    loaded = load_encoder(str(path))
    report = loaded.load_report
    assert loaded.method_hint == "mgca" and report["prefix"] == "img_encoder_q.model."
    assert report["n_loaded"] == report["n_expected"] == len([k for k in build_arch("resnet_tiny").state_dict() if not k.endswith("num_batches_tracked")])
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

    args = ["--encoder", str(mgca_synthetic_run), "--suite", "demo", "--demo-root", str(demo_root), "--cache-dir",
            str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--no-progress", "--workers", "0",
            "--tasks", "rsna_cls", "--fractions", "100"]
    assert main(args) == 0
    (result,) = read_results(tmp_path / "out")
    assert result.unit.task == "rsna_cls" and 0.0 <= result.value <= 1.0
    assert result.encoder["arch"] == "resnet_tiny"


@pytest.mark.parametrize("method", ["gloria"])
def test_real_images_run_and_export(method, demo_root, tiny_bert, tmp_path):
    path = train(tiny_config(demo_root, tiny_bert, tmp_path / method, method, max_steps=2))
    assert path.is_file() and path.name == f"{method}-real-resnet_tiny.ckpt"
    sd = torch.load(path, weights_only=True)["state_dict"]
    assert any(k.startswith("gloria.img_encoder.model.layer1.") for k in sd)
    assert "gloria.img_encoder.local_embedder.weight" in sd


# ------------------------------------------------------------------------------ DDP
@pytest.mark.ddp
def test_two_process_ddp_matches_single_process_on_the_same_global_batch(demo_root, tiny_bert, tmp_path):
    """MGCA (distributed Sinkhorn) with 2 gloo ranks x 4 pairs vs 1 process x 8 pairs split into
    2 virtual ranks: identical losses."""
    common = ["--method", "mgca", "--data-root", str(demo_root), "--text-encoder", str(tiny_bert), "--arch", "resnet_tiny",
              "--image-init", "random", "--resize", "40", "--crop", "32", "--upsample", "0", "--max-words", "32",
              "--max-steps", "3", "--workers", "0", "--no-progress", "--no-validate", "--seed", "0", "--device", "cpu",
              "--hp", "proj_hidden=32", "--hp", "num_prototypes=16", "--hp", "freeze_prototypes_epochs=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "recipes.pretraining", *common, "--batch-size", "4", "--output", str(tmp_path / "ddp")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
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

    assert chain_main(["--method", "gloria", "--generator", "roentgen", "--data-root", "/data", "--text-encoder", "/bert",
                       "--work", str(tmp_path), "--dry-run", "--", "--arch", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "recipes.synthesis generate" in out and "--preset roentgen" in out and "--image-source synthetic" in out
    assert f"--encoder {tmp_path}/pretrain/gloria-roentgen-resnet50.ckpt" in out
