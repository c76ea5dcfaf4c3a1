"""Hand-crafted, non-learned baseline encoders (sanity rows, not methods).

``--encoder models.baselines:regional_intensity``: the mean and spread of the intensity in
an 8 x 8 grid of image regions (128 features). On the demo suite, whose findings change
regional brightness, it beats a randomly initialised network, which makes it a useful
check that a benchmark's metric responds to encoder quality.
"""

import torch
from torch import nn


class RegionalIntensity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x[:, :1]
        mean = nn.functional.adaptive_avg_pool2d(grey, 8)
        square = nn.functional.adaptive_avg_pool2d(grey * grey, 8)
        spread = (square - mean * mean).clamp_min(0).sqrt()
        return torch.cat([mean.flatten(1), spread.flatten(1)], dim=1) * 4.0


def regional_intensity():
    return RegionalIntensity()
