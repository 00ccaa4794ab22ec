"""SpecAugment-style masking (Park et al. 2019) of log-mel batches, replayable like the image crops.

Each sample gets ``time_masks`` bands of up to ``time_width`` frames and ``freq_masks`` bands of up
to ``freq_width`` mel channels set to ``fill`` (0 = the mean of normalised log-mels). The draws are
``MaskParams`` (start and width of each band), so a stored view is replayed exactly and the teacher
cache can hold the teacher's outputs for it (``cache.views``), the same contract as
``data.augment.BatchAugment``: ``sample(n, generator)`` then ``apply(x, params)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MaskParams:
    time: Tensor  # (N, time_masks, 2): start frame, width
    freq: Tensor  # (N, freq_masks, 2): start mel channel, width
    id: int = -1  # stored view id (>= 0) when the batch source replays stored views; -1 = a fresh draw

    def to(self, device) -> MaskParams:
        return MaskParams(self.time.to(device), self.freq.to(device), self.id)

    def stored(self, index: Tensor, view: int) -> MaskParams:
        """The draws of samples ``index`` as stored view ``view`` (what a teacher cache keys on)."""
        index = index.to(self.time.device)
        return MaskParams(self.time[index], self.freq[index], view)


class SpecAugment:
    def __init__(self, time_masks: int = 2, time_width: int = 8, freq_masks: int = 2, freq_width: int = 6,
                 frames: int = 63, mels: int = 40, fill: float = 0.0):
        for name, value in (("time_masks", time_masks), ("time_width", time_width), ("freq_masks", freq_masks),
                            ("freq_width", freq_width)):
            if value < 0:
                raise ValueError(f"spec_augment {name} must be >= 0, got {value}")
        self.time_masks, self.time_width, self.freq_masks, self.freq_width = time_masks, time_width, freq_masks, freq_width
        self.frames, self.mels, self.fill = frames, mels, fill

    def describe(self) -> list:
        """Everything the views depend on (a teacher cache keys on it)."""
        return ["spec_augment", self.time_masks, self.time_width, self.freq_masks, self.freq_width,
                self.frames, self.mels, self.fill]

    @staticmethod
    def _bands(n: int, count: int, max_width: int, size: int, generator: torch.Generator) -> Tensor:
        width = torch.randint(0, max_width + 1, (n, count), generator=generator).clamp(max=size)
        start = (torch.rand(n, count, generator=generator) * (size - width + 1)).long()
        return torch.stack([start, width], dim=-1)

    def sample(self, n: int, generator: torch.Generator, *_, **__) -> MaskParams:
        return MaskParams(self._bands(n, self.time_masks, self.time_width, self.frames, generator),
                          self._bands(n, self.freq_masks, self.freq_width, self.mels, generator))

    @staticmethod
    def _covered(bands: Tensor, size: int) -> Tensor:
        """(N, size) bool: positions inside any of the (N, k, 2) [start, start + width) bands."""
        pos = torch.arange(size, device=bands.device)[None, None, :]
        start, width = bands[..., :1], bands[..., 1:]
        return ((pos >= start) & (pos < start + width)).any(dim=1)

    def apply(self, x: Tensor, params: MaskParams, *_) -> Tensor:
        """``x`` (N, C, mels, frames) with the bands of ``params`` set to ``fill``."""
        params = params.to(x.device)
        mels, frames = x.shape[-2:]
        mask = self._covered(params.freq, mels)[:, :, None] | self._covered(params.time, frames)[:, None, :]
        return x.masked_fill(mask[:, None], self.fill)

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, MaskParams]:
        params = self.sample(x.shape[0], generator)
        return self.apply(x, params), params
