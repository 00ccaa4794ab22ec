"""Several models trained side by side as one module (online distillation / deep mutual learning).

Holding the peers in one module lets the one Trainer train them together: one forward pass gives
every peer's outputs, stacked as (N, P, C), and one optimizer updates every peer's parameters.
The peers' parameters are disjoint, so SGD/AdamW on the union takes the same steps as one
optimizer per peer with the same recipe (only ``grad_clip`` differs: it clips the joint norm).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Cohort(nn.Module):
    def __init__(self, peers: list[nn.Module]):
        super().__init__()
        if len(peers) < 2:
            raise ValueError(f"a cohort needs at least two peers, got {len(peers)}")
        self.peers = nn.ModuleList(peers)

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([peer(x) for peer in self.peers], dim=1)
