"""Batch augmentation in plain torch: random crop with padding, horizontal flip, mixup and cutmix.

The random draws are returned as ``AugmentParams`` so the same view can be replayed
(e.g. to look up a teacher output stored for exactly that view).

Mixup (Zhang et al. 2018) and cutmix (Yun et al. 2019) blend each sample with a *partner*: another
sample of the dataset, drawn by dataset position together with the mixing weight, so the mixed
view of sample i depends only on the generator, not on which batch i lands in. That makes a mixed
view replayable like a crop: the teacher cache stores the teacher's outputs for it, which is
"function matching" (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
consistent"): teacher and student see exactly the same mixed image.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn import functional as F


@dataclass
class MixParams:
    """Draws of mixup/cutmix for N samples; ``lam`` is the share of the sample itself (1 = not mixed)."""

    partner: Tensor  # (N,) dataset position of the sample mixed in
    lam: Tensor  # (N,) weight of the sample itself: mixup's blend, or cutmix's share of area kept
    cut: Tensor  # (N,) bool: cutmix (paste a box of the partner) instead of mixup
    box: Tensor  # (N, 4) y0, y1, x0, x1 of the pasted box (cutmix rows only)
    dx: Tensor  # (N,) crop of the partner, drawn like the sample's own
    dy: Tensor
    flip: Tensor

    def select(self, index: Tensor) -> MixParams:
        return MixParams(*(getattr(self, f.name)[index] for f in fields(self)))

    def to(self, device) -> MixParams:
        return MixParams(*(getattr(self, f.name).to(device) for f in fields(self)))


@dataclass
class AugmentParams:
    dx: Tensor  # (N,) crop offsets in the padded image
    dy: Tensor
    flip: Tensor  # (N,) bool
    mix: MixParams | None = None
    # Labels of the mixed-in partners, set by the batch source (the label loss mixes them in).
    partner_targets: Tensor | None = None


class BatchAugment:
    """Random crop + flip, then (optionally) mixup or cutmix with a partner drawn from ``population`` samples.

    ``mixup``/``cutmix`` are the alpha of the Beta(alpha, alpha) the mixing weight is drawn from
    (0 = off). With both on, each mixed sample uses cutmix or mixup with probability 1/2 (as in
    timm). ``mix_prob`` is the share of samples that are mixed at all.
    """

    def __init__(self, crop_padding: int = 2, hflip: bool = True, fill: float = 0.0, mixup: float = 0.0,
                 cutmix: float = 0.0, mix_prob: float = 1.0):
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        if mixup < 0 or cutmix < 0:
            raise ValueError(f"mixup and cutmix are Beta alphas, >= 0 (0 = off); got {mixup}, {cutmix}")
        if not 0 <= mix_prob <= 1:
            raise ValueError(f"mix_prob must be in [0, 1], got {mix_prob}")
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.fill = fill
        self.mixup, self.cutmix, self.mix_prob = mixup, cutmix, mix_prob

    @property
    def mixes(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0

    def describe(self) -> list:
        """Everything the views depend on (a teacher cache keys on it)."""
        return [self.crop_padding, self.hflip, self.fill, self.mixup, self.cutmix, self.mix_prob]

    def _crop(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        span = 2 * self.crop_padding + 1
        dx = torch.randint(0, span, (n,), generator=generator)
        dy = torch.randint(0, span, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5 if self.hflip else torch.zeros(n, dtype=torch.bool)
        return dx, dy, flip

    def sample(self, n: int, generator: torch.Generator, population: int | None = None,
               image_size: tuple[int, int] = (28, 28)) -> AugmentParams:
        """Draws for ``n`` samples; with mixing on, partners are positions in ``[0, population)`` (default n)."""
        params = AugmentParams(*self._crop(n, generator))
        if self.mixes:
            params.mix = self._sample_mix(n, generator, population or n, image_size)
        return params

    def _sample_mix(self, n: int, generator: torch.Generator, population: int, image_size) -> MixParams:
        partner = torch.randint(0, population, (n,), generator=generator)
        mixed = torch.rand(n, generator=generator) < self.mix_prob
        both = self.mixup > 0 and self.cutmix > 0
        cut = (torch.rand(n, generator=generator) < 0.5) if both else torch.full((n,), self.cutmix > 0)
        lam = torch.ones(n)
        for use_cut, alpha in ((False, self.mixup), (True, self.cutmix)):
            if alpha > 0:
                rows = mixed & (cut == use_cut)
                lam = torch.where(rows, _beta(alpha, n, generator), lam)
        h, w = image_size
        # cutmix box: side sqrt(1 - lam) of the image, centred uniformly, clipped; lam = share kept.
        ratio = torch.sqrt(1 - lam)
        cy = torch.randint(0, h, (n,), generator=generator)
        cx = torch.randint(0, w, (n,), generator=generator)
        bh, bw = (ratio * h).long(), (ratio * w).long()
        box = torch.stack([(cy - bh // 2).clamp(0, h), (cy + bh // 2).clamp(0, h),
                           (cx - bw // 2).clamp(0, w), (cx + bw // 2).clamp(0, w)], dim=1)
        box[~(cut & mixed)] = 0
        area = (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2])
        lam = torch.where(cut, 1 - area.float() / (h * w), lam)
        return MixParams(partner, lam, cut, box, *self._crop(n, generator))

    def crop(self, x: Tensor, dx: Tensor, dy: Tensor, flip: Tensor) -> Tensor:
        """Crop each padded image at its (dy, dx) and mirror it where ``flip``; one gather per axis."""
        n, c, h, w = x.shape
        p = self.crop_padding
        device = x.device
        padded = F.pad(x, (p, p, p, p), value=self.fill) if p else x
        cols = torch.arange(w, device=device)
        rows = dy.to(device)[:, None] + torch.arange(h, device=device)
        flip = flip.to(device)[:, None]
        cols = dx.to(device)[:, None] + torch.where(flip, w - 1 - cols, cols)
        out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * p))
        return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))

    def apply(self, x: Tensor, params: AugmentParams, partners: Tensor | None = None) -> Tensor:
        """The view ``params`` describes; ``partners`` are the raw partner images (``inputs[params.mix.partner]``)."""
        out = self.crop(x, params.dx, params.dy, params.flip)
        if params.mix is None:
            return out
        if partners is None:
            raise ValueError("mixed views need the partner images: apply(x, params, inputs[params.mix.partner])")
        m = params.mix.to(x.device)
        other = self.crop(partners, m.dx, m.dy, m.flip)
        lam = m.lam.to(out.dtype)[:, None, None, None]
        blended = lam * out + (1 - lam) * other
        h, w = out.shape[-2:]
        rows = torch.arange(h, device=x.device)[None, :]
        cols = torch.arange(w, device=x.device)[None, :]
        in_rows = (rows >= m.box[:, :1]) & (rows < m.box[:, 1:2])
        in_cols = (cols >= m.box[:, 2:3]) & (cols < m.box[:, 3:4])
        pasted = torch.where((in_rows[:, :, None] & in_cols[:, None, :])[:, None], other, out)
        return torch.where(m.cut[:, None, None, None], pasted, blended)

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, AugmentParams]:
        """Crop/flip only, or mixing within ``x`` (partners are positions in ``x``)."""
        params = self.sample(x.shape[0], generator, image_size=tuple(x.shape[-2:]))
        partners = x[params.mix.partner.to(x.device)] if params.mix is not None else None
        return self.apply(x, params, partners), params


def with_mixing(base: BatchAugment | None, mixup: float, cutmix: float, mix_prob: float = 1.0) -> BatchAugment | None:
    """``base``'s crop and flip plus mixing (a recipe's own mixup/cutmix); ``base`` itself when mixing is off."""
    if not (mixup > 0 or cutmix > 0) or mix_prob == 0:
        return base
    if base is None:
        return BatchAugment(0, False, 0.0, mixup, cutmix, mix_prob)
    return BatchAugment(base.crop_padding, base.hflip, base.fill, mixup, cutmix, mix_prob)


def _beta(alpha: float, n: int, generator: torch.Generator) -> Tensor:
    """Beta(alpha, alpha) draws from ``generator``: X / (X + Y) with X, Y ~ Gamma(alpha) (Marsaglia-Tsang)."""
    x, y = _gamma(alpha, n, generator), _gamma(alpha, n, generator)
    return x / (x + y)


def _gamma(alpha: float, n: int, generator: torch.Generator) -> Tensor:
    # torch's Gamma sampler takes no generator; Marsaglia-Tsang with rejection, boosted for alpha < 1.
    boost = alpha < 1
    a = alpha + 1 if boost else alpha
    d = a - 1 / 3
    c = 1 / (9 * d) ** 0.5
    out = torch.empty(n)
    todo = torch.arange(n)
    while len(todo):
        z = torch.randn(len(todo), generator=generator)
        u = torch.rand(len(todo), generator=generator)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(1e-30)) < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp_min(1e-30)))
        out[todo[ok]] = d * v[ok]
        todo = todo[~ok]
    if boost:
        out = out * torch.rand(n, generator=generator) ** (1 / alpha)
    return out
