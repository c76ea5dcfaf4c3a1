"""Benchmark: detection with cached frozen pyramids vs exact mode (--no-feature-cache).

    .venv/bin/python bench/detection_speed.py [--encoder random:resnet50] [--task objectcxr_det] [--fraction 100]

The detection protocol has no augmentation, so the frozen encoder's layer2/3/4 maps of an
image never change: the harness computes them once (fp16 on disk, FeatureCache) and trains the
YOLOv3 neck + head on them. Exact mode recomputes the same maps (same function, same fp16
rounding) in every training and validation step instead. This script runs one unit three
ways (cached with a cold cache, cached with a warm cache, exact) and prints wall times, the
speed-up and both mAPs, which must be identical. Not a test: timings depend on the machine.
"""

from __future__ import annotations

from cache_vs_exact import compare, parser


def main() -> None:
    args = parser(__doc__, encoder="random:resnet50", task="objectcxr_det", workers="0").parse_args()
    run = compare(args)
    first = run.cached[0]
    print(
        f"task {args.task} at {args.fraction}% labels, encoder {args.encoder}, "
        f"device {first.provenance['device']}, seeds {run.seeds}"
    )
    print(
        f"train / val / test images {first.data['n_train']} / {first.data['n_val']} / {first.data['n_test']}, "
        f"input {first.hyperparameters['input_size']}"
    )
    for label, seconds, results in (
        ("cached, cold cache", run.cold, run.cached),
        ("cached, warm cache", run.warm, run.cached),
        ("exact (no cache)  ", run.exact, run.exact_results),
    ):
        print(
            f"{label}: {seconds:8.1f} s   (mAP {100 * run.mean(results):.2f}, "
            f"epochs {[r.training['epochs_run'] for r in results]}, "
            f"best {[r.training['best_epoch'] for r in results]})"
        )
    print(run.speed_up_line())
    print(run.difference_line("mAP"))
    same = all(
        c.value == e.value and c.training["history"] == e.training["history"]
        for c, e in zip(run.cached, run.exact_results)
    )
    print(f"cached and exact identical (mAP and every epoch's losses): {same}")


if __name__ == "__main__":
    main()
