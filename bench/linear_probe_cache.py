"""Benchmark: cached linear probe vs exact mode (--no-feature-cache) on the demo suite.

    .venv/bin/python bench/linear_probe_cache.py [--encoder random:resnet18] [--task rsna_cls] [--device cpu]

Runs one task at 100% labels three times: cached with a cold cache (features extracted once),
cached with a warm cache (features read from disk), and in exact mode (the encoder runs on
freshly augmented images every epoch). Prints wall times, speed-up ratios and the metric of
each, so the cache's approximation (a fixed set of augmented views) can be checked against
the exact protocol. Not a test: timings depend on the machine.
"""

from __future__ import annotations

from cache_vs_exact import compare, parser


def main() -> None:
    args = parser(__doc__, encoder="random:resnet18", task="rsna_cls", workers="1").parse_args()
    run = compare(args)
    cached_result = run.cached[0]
    metric = cached_result.metric
    print(
        f"task {args.task} at {args.fraction}% labels, encoder {args.encoder}, "
        f"device {cached_result.provenance['device']}"
    )
    print(
        f"train images {cached_result.data['n_train']}, "
        f"cached views per image {cached_result.hyperparameters['train_views_cached']}"
    )
    print(f"seeds {run.seeds}; metrics are means over seeds")
    print(
        f"cached, cold cache : {run.cold:8.1f} s   ({metric} {100 * run.mean(run.cached):.2f}, "
        f"best epochs {[r.training['best_epoch'] for r in run.cached]})"
    )
    print(f"cached, warm cache : {run.warm:8.1f} s")
    print(
        f"exact (no cache)   : {run.exact:8.1f} s   ({metric} {100 * run.mean(run.exact_results):.2f}, "
        f"best epochs {[r.training['best_epoch'] for r in run.exact_results]}, "
        f"{sum(r.training['epochs_run'] for r in run.exact_results)} epochs of encoder passes)"
    )
    print(run.speed_up_line())
    print(run.difference_line("metric"))


if __name__ == "__main__":
    main()
