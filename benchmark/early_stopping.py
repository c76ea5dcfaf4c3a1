"""The stopping rule of every training loop (linear probes, batched probes, the segmentation
decoder, the detection head).

Patience counts epochs without progress. Progress is a validation loss lower by more than
``min_delta`` (relative) than the loss of the last epoch that made progress (0 = any
improvement: the reference recipes' rule; a smoke suite may ask for more, see
benchmark/suites.py). A loop that monitors a validation score as well (detection: the mAP,
higher is better) passes it to :meth:`Patience.update`: then a higher score than any before
is progress, and the loss rule applies only while the score ties the best one (typically an
mAP of 0 while no box passes the objectness threshold yet). Which head is kept is the loop's
choice: the lowest validation loss (probes, segmentation) or the best (score, -loss)
(detection).
"""

from __future__ import annotations

import math


class Patience:
    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.reference, self.stale = math.inf, 0
        self.best_score = -math.inf

    def update(self, val_loss: float, score: float | None = None) -> bool:
        """Record an epoch's validation loss (and score, when monitored); True when training
        should stop."""
        loss_progress = not math.isfinite(self.reference) or val_loss < self.reference - self.min_delta * abs(
            self.reference
        )
        if score is None:
            progress = loss_progress
        else:
            progress = score > self.best_score or (score == self.best_score and loss_progress)
            self.best_score = max(self.best_score, score)
        if progress:
            self.reference, self.stale = val_loss, 0
        else:
            self.stale += 1
        return self.stale >= self.patience
