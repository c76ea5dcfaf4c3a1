"""The probe phase of the classification grid: separate single-head probes vs batched ones.

    python bench/batched_probe.py [--device cuda] [--scale 1.0] [--modes separate,batched]

Features are synthetic, with the shapes the harness hands to the probe: float32 (views, N, D)
training views (``--views`` 4, ``--dim`` 2048), one validation and one test matrix per task,
MGCA's split sizes times ``--scale`` (CheXpert 186,027 / 5,000 / 202, RSNA 16,010 / 5,337 /
5,337, COVIDx 23,988 / 5,998 / 400), labels from a noisy linear rule of the features (so the
heads learn and stop early). The 1% / 10% training sets of each seed are random row subsets
of the task's training views; at 100% the seeds share one tensor, as in the harness. For
each task and fraction it times the seeds trained one after another with
:func:`benchmark.linear_probe.train_linear_probe` (``--probe-batching off``) and together with
:func:`benchmark.batched_probe.train_linear_probes` (the default), and prints seconds, the
speed-up and how far the two agree (bit-identical, or epochs, best validation loss, test AUC / accuracy).
Both wall and process CPU seconds are printed (the CPU time is steadier on a shared machine).
Feature generation is not timed. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.batched_probe import HeadData, train_linear_probes  # noqa: E402
from benchmark.linear_probe import predict, train_linear_probe  # noqa: E402
from benchmark.task_spec import LinearProbeRecipe  # noqa: E402

TASKS = {  # train, val, test, outputs, loss
    "chexpert_cls": (186_027, 5_000, 202, 5, "bce"),
    "rsna_cls": (16_010, 5_337, 5_337, 1, "bce"),
    "covidx_cls": (23_988, 5_998, 400, 3, "cross_entropy"),
}


def synthetic_task(name: str, scale: float, dim: int, views: int, seed: int = 0):
    n_train, n_val, n_test, outputs, loss = TASKS[name]
    n_train, n_val = max(200, round(n_train * scale)), max(100, round(n_val * scale))
    g = torch.Generator().manual_seed(seed)
    rule = torch.randn(dim, outputs, generator=g) / dim**0.5

    def sample(n: int, count: int):
        x = torch.randn(count, n, dim, generator=g).half().float()  # the cache stores fp16
        score = x[0] @ rule + 0.8 * torch.randn(n, outputs, generator=g)
        y = (score > 0.3).float() if loss == "bce" else score.argmax(1)
        return x, y

    train, y_train = sample(n_train, views)
    val, y_val = sample(n_val, 1)
    test, y_test = sample(n_test, 1)
    return dict(
        train=train, y_train=y_train, val=val[0], y_val=y_val, test=test[0], y_test=y_test, outputs=outputs, loss=loss
    )


def score(head, task: dict, device) -> float:
    from sklearn.metrics import roc_auc_score

    probabilities = predict(head, task["test"].to(device), task["loss"]).cpu().numpy()
    y = task["y_test"].numpy()
    if task["loss"] == "bce":
        return float(np.mean([roc_auc_score(y[:, k], probabilities[:, k]) for k in range(y.shape[1])]))
    return float(np.mean(probabilities.argmax(1) == y))


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--scale",
        type=float,
        default=0.02,
        help="share of MGCA's train / val sizes (default 0.02 for 2 CPU cores; 1.0 = real size)",
    )
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--fractions", default="1,10,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--modes",
        default="separate,batched",
        help="comma-separated: separate (one single-head probe after another), batched (the device's default\n"
        "products: per head on CPU, stacked on CUDA), per-head, stacked",
    )
    parser.add_argument("--lr", type=float, default=5e-4, help="the protocol's 5e-4 (the demo suite uses 5e-3)")
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    modes = args.modes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"device {device} ({where}), "
        f"scale {args.scale}, dim {args.dim}, views {args.views}, seeds {seeds}, lr {args.lr}, "
        f"at most {args.max_epochs} epochs, patience {args.patience}"
    )
    warm = synthetic_task("rsna_cls", 0.0, args.dim, args.views)  # first calls (kernels, allocator) are not timed
    warm_recipe = LinearProbeRecipe(loss="bce", max_epochs=2)
    for per_head in (True, False):
        train_linear_probes(
            [HeadData(warm["train"], warm["y_train"], 0)],
            warm["val"],
            warm["y_val"],
            1,
            warm_recipe,
            device=device,
            progress=False,
            per_head_products=per_head,
        )
    train_linear_probe(
        warm["train"],
        warm["y_train"],
        warm["val"],
        warm["y_val"],
        1,
        warm_recipe,
        seed=0,
        device=device,
        progress=False,
    )
    totals = {m: [0.0, 0.0] for m in modes}  # wall, process CPU seconds
    agreement: dict[str, list] = {}
    for name in args.tasks.split(","):
        task = synthetic_task(name, args.scale, args.dim, args.views)
        recipe = LinearProbeRecipe(loss=task["loss"], lr=args.lr, max_epochs=args.max_epochs, patience=args.patience)
        n = task["train"].shape[1]
        for fraction in (int(f) for f in args.fractions.split(",")):
            size = max(2, round(n * fraction / 100))
            heads = []
            for seed in seeds:
                if fraction == 100:
                    views, targets = task["train"], task["y_train"]  # one tensor for every seed, as in the harness
                else:
                    rows_ = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values
                    views, targets = task["train"][:, rows_], task["y_train"][rows_]
                heads.append(HeadData(views, targets, seed))
            out = {}
            for mode in modes:
                sync(device)
                started, cpu = time.perf_counter(), time.process_time()
                if mode == "separate":
                    probes = [
                        train_linear_probe(
                            h.views,
                            h.targets,
                            task["val"],
                            task["y_val"],
                            task["outputs"],
                            recipe,
                            seed=h.seed,
                            device=device,
                            progress=False,
                        )
                        for h in heads
                    ]
                else:
                    per_head = {"batched": None, "per-head": True, "stacked": False}[mode]
                    probes = train_linear_probes(
                        heads,
                        task["val"],
                        task["y_val"],
                        task["outputs"],
                        recipe,
                        device=device,
                        progress=False,
                        per_head_products=per_head,
                    )
                sync(device)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                totals[mode] = [a + b for a, b in zip(totals[mode], (seconds, cpu))]
                out[mode] = (seconds, cpu, probes, [score(p.head, task, device) for p in probes])
            line = f"{name:13s} {fraction:3d}% n={size:7,d}"
            for mode, (seconds, cpu, probes, _) in out.items():
                epochs = "/".join(str(p.epochs_run) for p in probes)
                line += f" | {mode} {seconds:7.2f} s ({cpu:6.1f} s CPU), epochs {epochs}"
            if "separate" in out:
                _, _, p1, a1 = out["separate"]
                for mode in (m for m in out if m != "separate"):
                    _, _, p2, a2 = out[mode]
                    same_epochs = all(
                        (x.best_epoch, x.epochs_run) == (y.best_epoch, y.epochs_run) for x, y in zip(p1, p2)
                    )
                    identical = all(
                        x.history == y.history and torch.equal(x.head.weight.cpu(), y.head.weight.cpu())
                        for x, y in zip(p1, p2)
                    )
                    dval = max(abs(x.best_val_loss - y.best_val_loss) for x, y in zip(p1, p2))
                    dmetric = max(abs(x - y) for x, y in zip(a1, a2))
                    agreement.setdefault(mode, []).append((same_epochs, identical, dval, dmetric))
                    detail = "bit-identical" if identical else f"same epochs {same_epochs}, |d val| {dval:.1e}"
                    detail += "" if identical else f", |d metric| {dmetric:.1e}"
                    line += f" | {mode}: x{out['separate'][0] / out[mode][0]:.2f}, {detail}"
            print(line, flush=True)
    print("probe phase, all groups: " + ", ".join(f"{m} {w:.1f} s ({c:.1f} s CPU)" for m, (w, c) in totals.items()))
    for mode, rows in agreement.items():
        wall, cpu = totals["separate"][0] / totals[mode][0], totals["separate"][1] / totals[mode][1]
        identical, same_epochs = sum(r[1] for r in rows), sum(r[0] for r in rows)
        print(
            f"{mode} vs separate: speed-up x{wall:.2f} wall, x{cpu:.2f} CPU time; {identical}/{len(rows)} groups "
            f"bit-identical, {same_epochs}/{len(rows)} with the same best/last epochs, max |d best val loss| "
            f"{max(r[2] for r in rows):.1e}, max |d test AUC or accuracy| {max(r[3] for r in rows):.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
