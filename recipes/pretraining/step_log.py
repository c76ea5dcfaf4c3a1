"""Per-step loss records without a host sync per step.

Every micro-step's loss terms stay detached tensors on the device, summed per optimizer step in
float64 (``float32 value / accumulate``, exactly the arithmetic of the former Python-float sums,
so the logged numbers are bit-identical). :meth:`StepLog.flush` reads every pending step at
once: ONE device-to-host copy (and under DDP one all-reduce) per flush instead of one per loss
term, micro-step and rank. The trainer flushes every ``--log-every`` steps and before each save,
validation and stop, so ``log.jsonl`` still holds one line per optimizer step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor


def default_log_every(device: torch.device) -> int:
    """50 on an accelerator (reading a loss waits for the queued kernels), 1 on the CPU (free)."""
    return 1 if device.type == "cpu" else 50


class StepLog:
    def __init__(
        self,
        every: int,
        images_per_step: int,
        world_size: int = 1,
        all_reduce: Callable[[Tensor], Tensor] | None = None,
    ):
        if every < 1:
            raise ValueError(f"log every {every} steps: must be >= 1")
        self.every, self.images_per_step, self.world_size, self.all_reduce = (
            every,
            images_per_step,
            world_size,
            all_reduce,
        )
        self.sums: dict[str, Tensor] = {}
        self.pending: list[tuple[dict, dict[str, Tensor]]] = []
        self.t0 = time.perf_counter()

    def restart_clock(self) -> None:
        self.t0 = time.perf_counter()

    def add(self, losses: dict[str, Tensor], accumulate: int) -> None:
        """One micro-step's loss terms (a share 1 / ``accumulate`` of the step's record)."""
        for k, v in losses.items():
            term = v.detach().double() / accumulate
            self.sums[k] = term if k not in self.sums else self.sums[k] + term

    def end_step(self, **fields) -> None:
        """Close the optimizer step (``step``, ``epoch``, ``lr``, ...: Python values)."""
        self.pending.append((fields, self.sums))
        self.sums = {}

    def due(self) -> bool:
        return len(self.pending) >= self.every

    def flush(self) -> list[tuple[dict, dict[str, float]]]:
        """(record for log.jsonl, loss terms) of every pending step, in order; one sync."""
        if not self.pending:
            return []
        keys = list(self.pending[0][1])
        values = torch.stack([torch.stack([sums[k] for k in keys]) for _, sums in self.pending])  # (steps, terms)
        if self.all_reduce is not None:
            values = self.all_reduce(values)
        rows = values.tolist()
        dt = time.perf_counter() - self.t0
        rate = self.images_per_step * len(rows) / max(dt, 1e-9)
        out = []
        for (fields, _), row in zip(self.pending, rows):
            logs = {k: v / self.world_size if self.world_size > 1 else v for k, v in zip(keys, row)}
            out.append(({**fields, **logs, "img_per_s": rate}, logs))
        self.pending = []
        self.restart_clock()
        return out
