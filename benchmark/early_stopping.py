"""The stopping rule of the loss-monitored training loops (linear probes, batched probes, the
segmentation decoder).

Patience counts epochs without an improvement of the validation loss by more than
``min_delta`` relative to the last value that reset it (0 = any improvement: the reference
recipes' rule; a smoke suite may ask for more, see benchmark/suites.py). Which head is kept
is separate: always the one with the lowest validation loss. Detection monitors the
validation mAP with the loss as tie-break and has its own rule
(benchmark/families/detection.py ``made_progress``).
"""

from __future__ import annotations

import math


class Patience:
    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.reference, self.stale = math.inf, 0

    def update(self, val_loss: float) -> bool:
        """Record an epoch's validation loss; True when training should stop."""
        if not math.isfinite(self.reference) or val_loss < self.reference - self.min_delta * abs(self.reference):
            self.reference, self.stale = val_loss, 0
        else:
            self.stale += 1
        return self.stale >= self.patience
