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


class TwoWayPair(Cohort):
    """A (teacher, student) cohort whose teacher learns at ``teacher_lr_scale`` times the student's rate.

    ``param_groups`` tells the trainer's optimizer the two groups; the schedule multiplies each
    group's ``lr_scale`` into the learning rate of every step.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, teacher_lr_scale: float = 0.1):
        super().__init__([teacher, student])
        if teacher_lr_scale <= 0:
            raise ValueError(f"teacher_lr_scale must be > 0, got {teacher_lr_scale}")
        self.teacher_lr_scale = teacher_lr_scale

    @property
    def teacher(self) -> nn.Module:
        return self.peers[0]

    @property
    def student(self) -> nn.Module:
        return self.peers[1]

    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.teacher.parameters() if p.requires_grad],
                 "lr_scale": self.teacher_lr_scale},
                {"params": [p for p in self.student.parameters() if p.requires_grad], "lr_scale": 1.0}]
