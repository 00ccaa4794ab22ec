"""Loss bookkeeping that stays on the device: the trainer reads it once per log interval, not per step.

``float(loss)`` after every step makes the host wait for the device (on a GPU, a stall per step).
Here the per-term totals (sum over steps of value x batch size, in float64 as the host sums did)
and the first step whose loss was not finite are kept as device tensors; ``sync`` copies what
the progress line and the NaN guard need in one transfer.
"""

from __future__ import annotations

import torch
from torch import Tensor


class RunningLoss:
    def __init__(self, device: torch.device):
        self.device = device
        self._totals: dict[str, Tensor] = {}
        self._first_bad: Tensor | None = None  # step of the first non-finite loss, -1 while all were finite
        self._bad: Tensor | None = None  # [loss, *terms] at that step
        self._bad_keys: tuple[str, ...] = ()
        self._last: Tensor | None = None
        self.shown = ""  # the progress line's text: the epoch's mean loss so far, as of the last sync
        self._seen = 0

    def add(self, losses: dict[str, Tensor], loss: Tensor, n: int, step: int) -> None:
        self._seen += n
        for key, value in losses.items():
            weighted = value.detach().double() * n
            self._totals[key] = self._totals[key] + weighted if key in self._totals else weighted
        values = torch.stack([loss.detach().float(), *(v.detach().float() for v in losses.values())])
        if self._first_bad is None or tuple(losses) != self._bad_keys:
            if self._first_bad is None:
                self._first_bad = torch.full((), -1, dtype=torch.long, device=values.device)
            self._bad, self._bad_keys = torch.zeros_like(values), tuple(losses)
        new = ~torch.isfinite(values[0]) & (self._first_bad < 0)
        self._first_bad = torch.where(new, step, self._first_bad)
        self._bad = torch.where(new, values, self._bad)
        self._last = values[0]

    def sync(self) -> tuple[int, float, dict[str, float]] | None:
        """One host transfer. Returns (step, loss, terms) of the first non-finite loss, or None."""
        if self._last is None:
            return None
        total = sum(self._totals.values()) if self._totals else self._last.double() * 0
        first_bad, last, total = torch.stack([self._first_bad.double(), self._last.double(), total]).tolist()
        self.shown = f"loss {total / max(1, self._seen):.4f}"  # the mean, as the epoch line reports it
        if first_bad < 0:
            return None
        loss, *terms = self._bad.tolist()
        return int(first_bad), loss, dict(zip(self._bad_keys, terms, strict=True))

    def totals(self) -> dict[str, float]:
        if not self._totals:
            return {}
        return dict(zip(self._totals, torch.stack(list(self._totals.values())).tolist(), strict=True))
