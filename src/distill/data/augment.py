"""Batch augmentation in plain torch: random crop with padding and horizontal flip.

The random draws are returned as ``AugmentParams`` so the same view can be replayed
(e.g. to look up a teacher output stored for exactly that view).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class AugmentParams:
    dx: Tensor  # (N,) crop offsets in the padded image
    dy: Tensor
    flip: Tensor  # (N,) bool


class BatchAugment:
    def __init__(self, crop_padding: int = 2, hflip: bool = True, fill: float = 0.0):
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.fill = fill

    def sample(self, n: int, generator: torch.Generator) -> AugmentParams:
        span = 2 * self.crop_padding + 1
        dx = torch.randint(0, span, (n,), generator=generator)
        dy = torch.randint(0, span, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5 if self.hflip else torch.zeros(n, dtype=torch.bool)
        return AugmentParams(dx, dy, flip)

    def apply(self, x: Tensor, params: AugmentParams) -> Tensor:
        """Crop each padded image at its (dy, dx) and mirror it where ``flip``; one gather per axis."""
        n, c, h, w = x.shape
        p = self.crop_padding
        device = x.device
        padded = torch.nn.functional.pad(x, (p, p, p, p), value=self.fill) if p else x
        cols = torch.arange(w, device=device)
        rows = params.dy.to(device)[:, None] + torch.arange(h, device=device)
        flip = params.flip.to(device)[:, None]
        cols = params.dx.to(device)[:, None] + torch.where(flip, w - 1 - cols, cols)
        out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * p))
        return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, AugmentParams]:
        params = self.sample(x.shape[0], generator)
        return self.apply(x, params), params
