"""MGCA's projection heads (also used by the ConVIRT and GLoRIA presets that follow it)."""

from __future__ import annotations

from torch import Tensor, nn


class GlobalEmbedding(nn.Module):
    """MGCA's projection: Linear -> BN -> ReLU -> Linear -> BN(affine=False)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.head = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
            nn.BatchNorm1d(output_dim, affine=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x)


class LocalEmbedding(nn.Module):
    """MGCA's token projection: 1x1 Conv1d -> BN -> ReLU -> 1x1 Conv1d -> BN(affine=False), on (B, N, C)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.head = nn.Sequential(
            nn.Conv1d(input_dim, hidden_dim, 1),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden_dim, output_dim, 1),
            nn.BatchNorm1d(output_dim, affine=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x.transpose(1, 2)).transpose(1, 2)
