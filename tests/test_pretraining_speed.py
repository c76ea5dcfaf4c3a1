"""The pretraining step without per-step host syncs gives the former code's losses: MGCA's
vectorised word weights bit for bit, GLoRIA's batched word-region loss within a stated
tolerance (it sums in another order), the deferred loss log bit for bit; channels-last and
torch.compile (eager backend here) change nothing but speed.

Tolerance of GLoRIA's batched local loss against the per-caption loop, fp32 on the CPU:
relative 1e-6 on the loss, 1e-5 of the largest gradient entry on the gradients (measured: at
most 2e-7 and 1.6e-6)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from recipes.pretraining import losses
from recipes.pretraining.acceleration import prepare, wants_channels_last
from recipes.pretraining.data import Captioner, ImageSpec, PairDataset, collate, load_pretraining_pairs
from recipes.pretraining.encoders import load_tokenizer
from recipes.pretraining.methods import StepContext, build_method
from recipes.pretraining.step_log import StepLog, default_log_every
from recipes.pretraining.train import train
import tests.test_pretraining as _pretraining
from tests.test_pretraining import TINY_HP, read_log, tiny_config

tiny_bert = _pretraining.tiny_bert  # the session fixture of tests/test_pretraining.py, shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------ the former code, verbatim
def row_loop_clipped_weights(weights, lo=0.1, hi=0.9, nonzero_only=True):
    out = weights.detach().clone().float()
    for i in range(out.shape[0]):
        row = out[i]
        sel = row != 0 if nonzero_only else torch.ones_like(row, dtype=torch.bool)
        if sel.any():
            vals = row[sel]
            row[sel] = vals.clamp(torch.quantile(vals, lo), torch.quantile(vals, hi))
    return out / out.sum(dim=1, keepdim=True).clamp(min=1e-12)


def per_caption_local_loss(word_emb, region_emb, cap_lens, temp1=4.0, temp2=5.0, temp3=10.0):
    B = word_emb.shape[0]
    cols = [
        losses.gloria_word_region_similarity(word_emb[i, :, : cap_lens[i]], region_emb, temp1, temp2)[0]
        for i in range(B)
    ]
    sims = torch.stack(cols, dim=1) * temp3
    labels = torch.arange(B, device=sims.device)
    return F.cross_entropy(sims, labels), F.cross_entropy(sims.t(), labels)


# ------------------------------------------------------------------------------ losses
def test_mgca_word_weights_are_bit_identical_to_the_row_loop():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        w = torch.rand(9, 40, generator=g) ** 3
        lengths = torch.randint(0, 41, (9,), generator=g)
        lengths[0] = 0  # a row with no word at all stays zero
        w = w.masked_fill(torch.arange(40)[None] >= lengths[:, None], 0.0)
        new = losses.clipped_weights(w)
        assert torch.equal(new, row_loop_clipped_weights(w))
        assert torch.equal(
            losses.clipped_weights(w, nonzero_only=False), row_loop_clipped_weights(w, nonzero_only=False)
        )
    assert (new[0] == 0).all() and torch.allclose(new[lengths > 0].sum(1), torch.ones(int((lengths > 0).sum())))


def test_gloria_batched_local_loss_matches_the_per_caption_loop_within_tolerance():
    g = torch.Generator().manual_seed(0)
    B, D, T, R = 20, 32, 30, 49
    for block in (16, 1, 64):
        words = torch.randn(B, D, T, generator=g, requires_grad=True)
        regions = torch.randn(B, D, R, generator=g, requires_grad=True)
        lens = torch.randint(1, 25, (B,), generator=g)
        ref = per_caption_local_loss(words, regions, lens.tolist())
        ref_grads = torch.autograd.grad(sum(ref), [words, regions])
        new = losses.gloria_local_loss(words, regions, lens, max_len=int(lens.max()), block=block)
        grads = torch.autograd.grad(sum(new), [words, regions])
        for a, b in zip(new, ref):
            assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-6, abs=0)
        for a, b in zip(grads, ref_grads):
            assert (a - b).abs().max() <= 1e-5 * b.abs().max()
        # the lengths as a list (no max given) or a device tensor (read once) give the same values
        assert torch.equal(
            torch.stack(losses.gloria_local_loss(words, regions, lens.tolist(), block=block)), torch.stack(new).detach()
        )
        assert torch.equal(
            torch.stack(losses.gloria_local_loss(words, regions, lens, block=block)), torch.stack(new).detach()
        )


@pytest.fixture(scope="module")
def batch(demo_root, tiny_bert):
    frame = load_pretraining_pairs(demo_root)
    ds = PairDataset(
        frame[frame.subset == "train"].reset_index(drop=True),
        Captioner(load_tokenizer(tiny_bert), 32),
        ImageSpec(40, 32),
        train=False,
    )
    return collate([ds[(i, 0)] for i in range(8)])


def values(losses_: dict) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in losses_.items()}


def tiny_method(name, tiny_bert):
    torch.manual_seed(0)
    return build_method(
        name, arch="resnet_tiny", text_encoder=str(tiny_bert), image_init="random", upsample=0, text_layers=0, **TINY_HP
    )


def test_methods_give_the_former_losses_on_the_same_batch(batch, tiny_bert, monkeypatch):
    """MGCA: exactly equal (its new word weights are bit-identical); GLoRIA: within the stated
    tolerance, with and without the host copy of the caption lengths."""
    assert batch["host_n_words"] == batch["n_words"].tolist()
    new = tiny_method("mgca", tiny_bert)(
        batch, StepContext(step=3)
    )  # a fresh model each time: a step renormalises the prototypes
    import recipes.pretraining.methods.mgca as mgca_module

    monkeypatch.setattr(mgca_module, "clipped_weights", row_loop_clipped_weights)
    old = tiny_method("mgca", tiny_bert)(batch, StepContext(step=3))
    assert values(new) == values(old)
    monkeypatch.undo()

    new = tiny_method("gloria", tiny_bert)(batch, StepContext(step=3))
    without_host = tiny_method("gloria", tiny_bert)(
        {k: v for k, v in batch.items() if k != "host_n_words"}, StepContext(step=3)
    )
    assert values(new) == values(without_host)
    import recipes.pretraining.methods.gloria as gloria_module

    monkeypatch.setattr(
        gloria_module,
        "gloria_local_loss",
        lambda w, r, lens, t1, t2, t3, max_len=None: per_caption_local_loss(w, r, [int(n) for n in lens], t1, t2, t3),
    )
    old = tiny_method("gloria", tiny_bert)(batch, StepContext(step=3))
    for k in old:
        assert values(new)[k] == pytest.approx(values(old)[k], rel=1e-6, abs=0), k


# ------------------------------------------------------------------------------ the deferred log
def test_step_log_reads_once_per_flush_and_matches_python_float_sums():
    g = torch.Generator().manual_seed(0)
    log = StepLog(every=3, images_per_step=24)
    expected = []
    for step in range(1, 5):
        sums = {}
        for _ in range(3):  # --accumulate 3
            terms = {"loss": torch.rand((), generator=g) * 10, "loss_ita": torch.rand((), generator=g)}
            log.add(terms, 3)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / 3  # the former code's arithmetic
        log.end_step(step=step, epoch=0, lr=1e-4)
        expected.append(sums)
        assert log.due() == (step == 3)
        if log.due():
            first = log.flush()
    rest = log.flush()
    assert [r["step"] for r, _ in first] == [1, 2, 3] and [r["step"] for r, _ in rest] == [4] and log.flush() == []
    for (rec, logs), sums in zip(first + rest, expected):
        assert logs == sums and rec["loss"] == sums["loss"] and rec["lr"] == 1e-4 and rec["img_per_s"] > 0
    assert default_log_every(torch.device("cpu")) == 1 and default_log_every(torch.device("cuda")) == 50


class Recorder:
    def __init__(self):
        self.steps = []

    def on_step(self, step, logs):
        self.steps.append((step, logs["loss"]))


def test_training_log_is_the_same_whatever_log_every(demo_root, tiny_bert, tmp_path):
    runs = {}
    for every in (1, 4):
        hooks = Recorder()
        train(
            tiny_config(
                demo_root, tiny_bert, tmp_path / str(every), "mgca", max_steps=5, save_every=2, log_every=every
            ),
            hooks=hooks,
        )
        rows = [
            {k: v for k, v in r.items() if k != "img_per_s"} for r in read_log(tmp_path / str(every)) if "loss" in r
        ]
        runs[every] = rows, hooks.steps
    assert [r["step"] for r in runs[1][0]] == [1, 2, 3, 4, 5]
    assert runs[4] == runs[1]  # identical lines and hook calls, bit for bit
    assert json.loads((tmp_path / "4" / "log.jsonl").read_text().splitlines()[0])["step"] == 1


# ------------------------------------------------------------------------------ channels-last and compile
def test_channels_last_is_cuda_only_by_default_and_changes_nothing_but_layout(batch, tiny_bert, tmp_path, demo_root):
    plain = tiny_method("convirt", tiny_bert)
    assert not wants_channels_last("auto", torch.device("cpu"), plain) and wants_channels_last(
        "auto", torch.device("cuda"), plain
    )
    assert not wants_channels_last(
        "on",
        torch.device("cuda"),
        build_method(
            "convirt",
            arch="vit_tiny_test",
            text_encoder=str(tiny_bert),
            image_init="random",
            upsample=0,
            text_layers=0,
            **TINY_HP,
        ),
    )
    nhwc = tiny_method("convirt", tiny_bert)
    assert prepare(nhwc, torch.device("cpu"), channels_last="on")["channels_last"]
    conv = nhwc.img_encoder.model.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    a, b = plain(batch, StepContext(step=1)), nhwc(batch, StepContext(step=1))
    for k in a:
        assert values(b)[k] == pytest.approx(values(a)[k], rel=1e-5), k
    path = train(tiny_config(demo_root, tiny_bert, tmp_path / "nhwc", "convirt", max_steps=1, channels_last="on"))
    sd = torch.load(path, weights_only=True)["state_dict"]
    assert sd["img_encoder.model.conv1.weight"].is_contiguous() and set(sd) == set(plain.state_dict())


def test_compile_keeps_parameter_names_and_eager_backend_losses(batch, tiny_bert):
    plain, compiled = tiny_method("convirt", tiny_bert), tiny_method("convirt", tiny_bert)
    assert prepare(compiled, torch.device("cpu"), compile_backend="eager")["compile"] == "eager"
    assert list(compiled.state_dict()) == list(plain.state_dict())
    a, b = plain(batch, StepContext(step=2)), compiled(batch, StepContext(step=2))
    assert values(a) == values(b)
