"""Batched linear probes (benchmark/batched_probe.py): each head trains as it would alone.

On CPU (per-head products, the default there) a head's numbers are bit-identical to the
single-head trainer's; in either form of the products they do not depend on which heads
share the batch (alone, with other seeds, after other heads stopped). The stacked products
(the CUDA default) agree with the single-head trainer within the tolerance README "Batched
probes" states. Through the CLI: a run of one seed, a resumed run and ``--probe-batching
off`` give the units of a batched run of three seeds exactly, under the same unit keys."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from benchmark.batched_probe import HeadData, train_linear_probes
from benchmark.linear_probe import predict, train_linear_probe
from benchmark.task_spec import LinearProbeRecipe

from .cli_args import demo_cli_args

CPU = torch.device("cpu")
# batched vs single-head trainer (same init, same draws; only the matrix products' summation
# order differs): stated in README "Batched probes"
TOLERANCE = {"val_loss": 1e-6, "probability": 1e-6, "auc": 1e-6}  # measured: 2.4e-7, 1.2e-7, 0


def _head_data(n: int, dim: int, outputs: int, loss: str, seed: int, views: int = 2):
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(views, n, dim, generator=g)
    w = torch.randn(dim, outputs, generator=g) / dim**0.5
    score = x[0] @ w + 0.7 * torch.randn(n, outputs, generator=g)
    y = (score > 0).float() if loss == "bce" else score.argmax(1)
    return x, y


def _problem(loss: str, outputs: int, n: int = 150, dim: int = 24):
    heads = [HeadData(*_head_data(n, dim, outputs, loss, seed), seed=seed) for seed in (0, 1, 2)]
    xv, yv = _head_data(90, dim, outputs, loss, 7, views=1)
    xt, yt = _head_data(120, dim, outputs, loss, 8, views=1)
    return heads, xv[0], yv, xt[0], yt


CASES = [("bce", 5), ("bce", 1), ("cross_entropy", 3)]


def _same(a, b) -> bool:
    return (
        a.history == b.history
        and (a.best_epoch, a.epochs_run, a.best_val_loss) == (b.best_epoch, b.epochs_run, b.best_val_loss)
        and torch.equal(a.head.weight, b.head.weight)
        and torch.equal(a.head.bias, b.head.bias)
    )


@pytest.mark.parametrize("loss,outputs", CASES)
def test_per_head_products_are_bit_identical_to_the_single_head_trainer(loss, outputs):
    """The CPU default: every head's numbers are the single-head trainer's, bit for bit (dim
    24: rows and weights of the stacked tensors sit at addresses that are not 64-byte
    aligned, which MKL would round differently)."""
    heads, xv, yv, _, _ = _problem(loss, outputs)
    recipe = LinearProbeRecipe(loss=loss, lr=2e-2, batch_size=32, max_epochs=60, patience=4)
    together = train_linear_probes(heads, xv, yv, outputs, recipe, device=CPU, progress=False, min_delta=0.01)
    assert len({r.epochs_run for r in together}) > 1  # a head stops while the others go on
    for head, batched in zip(heads, together):
        single = train_linear_probe(
            head.views,
            head.targets,
            xv,
            yv,
            outputs,
            recipe,
            seed=head.seed,
            device=CPU,
            progress=False,
            min_delta=0.01,
        )
        assert _same(batched, single)


@pytest.mark.parametrize("per_head", [True, False], ids=["per-head", "stacked"])
@pytest.mark.parametrize("loss,outputs", CASES)
def test_a_head_is_bit_identical_alone_and_in_a_batch(loss, outputs, per_head):
    heads, xv, yv, _, _ = _problem(loss, outputs)
    recipe = LinearProbeRecipe(loss=loss, lr=2e-2, batch_size=32, max_epochs=60, patience=4)
    kwargs = dict(device=CPU, progress=False, min_delta=0.01, per_head_products=per_head)
    together = train_linear_probes(heads, xv, yv, outputs, recipe, **kwargs)
    # the heads stop at different epochs, so the batch shrinks (to one head) while the others go on
    assert len({r.epochs_run for r in together}) > 1
    for head, batched in zip(heads, together):
        assert _same(batched, train_linear_probes([head], xv, yv, outputs, recipe, **kwargs)[0])
    pair = train_linear_probes(
        [heads[2], heads[0]], xv, yv, outputs, recipe, **kwargs
    )  # another company, another order
    assert _same(pair[0], together[2]) and _same(pair[1], together[0])


@pytest.mark.parametrize("loss,outputs", CASES)
def test_stacked_products_match_the_single_head_trainer_within_tolerance(loss, outputs):
    """The CUDA default (one bmm for all heads), run on CPU: other summation order, same
    epochs, and values within ``TOLERANCE`` on a well-conditioned probe."""
    heads, xv, yv, xt, yt = _problem(loss, outputs)
    recipe = LinearProbeRecipe(loss=loss, lr=1e-2, batch_size=32, max_epochs=60, patience=5)
    together = train_linear_probes(heads, xv, yv, outputs, recipe, device=CPU, progress=False, per_head_products=False)
    differs = False
    for head, batched in zip(heads, together):
        single = train_linear_probe(
            head.views, head.targets, xv, yv, outputs, recipe, seed=head.seed, device=CPU, progress=False
        )
        differs |= not torch.equal(batched.head.weight, single.head.weight)
        assert (batched.best_epoch, batched.epochs_run) == (single.best_epoch, single.epochs_run)
        for a, b in zip(batched.history, single.history):
            assert abs(a["val_loss"] - b["val_loss"]) <= TOLERANCE["val_loss"]
            assert abs(a["train_loss"] - b["train_loss"]) <= TOLERANCE["val_loss"]
        p_batched, p_single = predict(batched.head, xt, loss), predict(single.head, xt, loss)
        assert (p_batched - p_single).abs().max() <= TOLERANCE["probability"]
        if loss == "bce":
            auc = [
                roc_auc_score(yt[:, k], p_batched[:, k]) - roc_auc_score(yt[:, k], p_single[:, k])
                for k in range(outputs)
            ]
            assert max(abs(d) for d in auc) <= TOLERANCE["auc"]
        else:
            assert torch.equal(p_batched.argmax(1), p_single.argmax(1))
    assert differs  # the tolerance is needed: the products do round differently


def test_initialisation_and_first_step_are_the_single_head_trainers():
    """With one epoch and a zero learning rate nothing moves: both trainers return the
    head of ``torch.manual_seed(seed); nn.Linear(...)``, bit for bit."""
    heads, xv, yv, _, _ = _problem("bce", 5)
    recipe = LinearProbeRecipe(loss="bce", lr=0.0, weight_decay=0.0, max_epochs=1, patience=1)
    together = train_linear_probes(heads, xv, yv, 5, recipe, device=CPU, progress=False)
    for head, batched in zip(heads, together):
        single = train_linear_probe(
            head.views, head.targets, xv, yv, 5, recipe, seed=head.seed, device=CPU, progress=False
        )
        assert torch.equal(batched.head.weight, single.head.weight) and torch.equal(batched.head.bias, single.head.bias)
        assert batched.history[0]["val_loss"] == single.history[0]["val_loss"]


def test_heads_of_different_training_set_sizes_are_refused():
    heads, xv, yv, _, _ = _problem("bce", 1)
    heads[1] = HeadData(heads[1].views[:, :100], heads[1].targets[:100], 1)
    with pytest.raises(ValueError, match="one training-set size"):
        train_linear_probes(heads, xv, yv, 1, LinearProbeRecipe(loss="bce"), device=CPU, progress=False)


# --- through the CLI, on the small demo suite -------------------------------------------


def _args(demo_root, cache, output, *extra):
    return demo_cli_args(demo_root, cache, output, "--tasks", "covidx_cls,rsna_cls", "--fractions", "10,100", *extra)


@pytest.fixture(scope="module")
def batched_run(demo_root, tmp_path_factory):
    from benchmark.cli import main

    cache = tmp_path_factory.mktemp("batched-cache")
    output = tmp_path_factory.mktemp("batched-out") / "run"
    assert main(_args(demo_root, cache, output, "--seeds", "0,1,2")) == 0
    return cache, output


def _units(output):
    from benchmark.results import read_results

    return {(r.unit.task, r.unit.fraction, r.unit.seed): r for r in read_results(output)}


def test_batched_run_records_its_groups_and_one_seed_gives_the_same_units(demo_root, batched_run, tmp_path):
    from benchmark.cli import main

    cache, output = batched_run
    units = _units(output)
    assert len(units) == 12
    for (task, fraction, _), r in units.items():
        assert r.provenance["probe_batching"] == {
            "batched": True,
            "heads": 3,
            "units": [f"{task}_frac{fraction}_seed{s}" for s in (0, 1, 2)],
        }
    alone = tmp_path / "seed1"
    assert main(_args(demo_root, cache, alone, "--seeds", "1")) == 0
    for key, r in _units(alone).items():
        assert r.provenance["probe_batching"]["heads"] == 1
        other = units[key]
        assert (r.value, r.metrics, r.training["history"], r.unit_key) == (
            other.value,
            other.metrics,
            other.training["history"],
            other.unit_key,
        )


def test_probe_batching_off_gives_the_same_units_on_cpu(demo_root, batched_run, tmp_path, capsys):
    from benchmark.cli import main

    cache, output = batched_run
    off = tmp_path / "off"
    assert main(_args(demo_root, cache, off, "--seeds", "0,1,2", "--tasks", "rsna_cls", "--probe-batching", "off")) == 0
    batched = _units(output)
    for key, r in _units(off).items():
        assert r.provenance["probe_batching"] == {"batched": False, "heads": 1, "units": [r.unit.name]}
        other = batched[key]
        assert (r.value, r.metrics, r.training["history"], r.unit_key) == (
            other.value,
            other.metrics,
            other.training["history"],
            other.unit_key,
        )
    # a batched folder resumes under --probe-batching off (and the other way round): same keys
    capsys.readouterr()
    assert main(_args(demo_root, cache, output, "--seeds", "0,1,2", "--probe-batching", "off")) == 0
    assert "12 of 12 units already finished" in capsys.readouterr().out


def test_killed_batched_run_resumes_to_the_same_numbers(demo_root, batched_run, tmp_path, monkeypatch, capsys):
    import benchmark.families.classification as classification
    from benchmark.cli import main

    cache, output = batched_run
    real = classification.run_unit
    calls = {"n": 0}

    def dies_on_second(*args, **kwargs):  # the kill lands inside the first group of three
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(classification, "run_unit", dies_on_second)
    out = tmp_path / "killed"
    args = _args(demo_root, cache, out, "--seeds", "0,1,2", "--tasks", "covidx_cls")
    assert main(args) == 130
    assert [p.name for p in out.glob("*/*.json")] == ["covidx_cls_frac10_seed0.json"]
    monkeypatch.setattr(classification, "run_unit", real)
    capsys.readouterr()
    assert main(args) == 0
    assert "1 of 6 units already finished" in capsys.readouterr().out
    resumed, batched = _units(out), _units(output)
    assert len(resumed) == 6
    # seeds 1 and 2 of 10% trained as a pair after the resume: the same numbers as in the triple
    for key, r in resumed.items():
        assert (r.value, r.training["history"]) == (batched[key].value, batched[key].training["history"])
    assert resumed[("covidx_cls", 10, 1)].provenance["probe_batching"]["heads"] == 2
