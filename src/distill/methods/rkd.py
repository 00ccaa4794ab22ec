"""Park, Kim, Lu, Cho 2019, "Relational Knowledge Distillation" (CVPR)."""

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat


def pairwise_distances(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances from ||a||^2 + ||b||^2 - 2ab clamped at eps (a finite gradient), diagonal 0: (N, N)."""
    squared = x.pow(2).sum(1)
    d = (squared[:, None] + squared[None, :] - 2 * x @ x.t()).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(len(x), dtype=d.dtype, device=d.device))


def distance_potential(x: Tensor) -> Tensor:
    """Pairwise distances divided by the mean of the positive ones: (N, N)."""
    d = pairwise_distances(x)
    positive = d[d > 0]
    return d / positive.mean() if len(positive) else d


def angle_potential(x: Tensor) -> Tensor:
    """cos of the angle at j between i and k, for every ordered triplet (j, i, k): (N, N, N).

    The official code normalises the N^2 difference vectors x_i - x_j and multiplies them, N^3 D
    work: 3.7 s per step for 128 samples of 6,272 features. The same cosines come from the Gram
    matrix G, <x_i - x_j, x_k - x_j> = G_ik - G_ij - G_jk + G_jj, in N^2 D + N^3. Float64 keeps
    those differences of large entries as accurate as the direct form; where i = j or k = j the
    official unit vector is 0 (F.normalize), so is the cosine here, and likewise for two equal
    samples: a squared distance below 1e-12 of the squared norms, beneath float32 resolution, is a
    zero difference (from G it would be rounding noise, not 0).
    """
    x64 = x.double()
    g = x64 @ x64.t()
    sq_norm = g.diagonal()
    dot = g[None, :, :] - g[:, :, None] - g[:, None, :] + sq_norm[:, None, None]  # dot[j, i, k]
    sq_dist = sq_norm[None, :] - 2 * g + sq_norm[:, None]  # sq_dist[j, i] = |x_i - x_j|^2
    same = sq_dist <= 1e-12 * (sq_norm[None, :] + sq_norm[:, None])
    # |x_i - x_j|, at least F.normalize's eps 1e-12 (clamped before the root: a finite gradient)
    length = sq_dist.clamp(min=1e-24).sqrt()
    cos = dot / (length[:, :, None] * length[:, None, :])
    return cos.masked_fill(same[:, :, None] | same[:, None, :], 0.0).to(x.dtype)


@register_method("rkd")
class RKD(FeatureMethod):
    """total = distance_weight * RKD-D + angle_weight * RKD-A + label_weight * CE.

    The official code is lenscloth/RKD (``metric/loss.py``: ``RkdDistance``, ``RKdAngle``), copied by
    RepDistiller: RKD-D is the Huber (smooth L1) loss between the student's and teacher's distance
    matrices, each divided by the mean of its positive entries; RKD-A the Huber loss between the
    cosines of every triplet's angle. Both average over **all** N^2 and N^3 entries, the diagonal
    and degenerate triplets (zeros on both sides) included, so the paper's weights (25 and 50, as
    RepDistiller) mean what they mean there. ``entries: distinct`` is distill's variant: the mean over
    pairs i != j and triplets of distinct samples only. Features are flattened per sample, so widths
    need not match. Label weight 1 (RepDistiller ``-r 1 -a 0 -b 1``).
    """

    several_pairs = False
    summary = "relational KD: match pairwise distances and triplet angles of embeddings (Park et al. 2019)"
    paper = "Park, Kim, Lu, Cho 2019, Relational Knowledge Distillation, CVPR, arXiv:1904.05068"
    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool",
                 distance_weight: Annotated[float, Field(ge=0)] = 25.0,
                 angle_weight: Annotated[float, Field(ge=0)] = 50.0, entries: Literal["all", "distinct"] = "all"):
        super().__init__(student_layer, teacher_layer)
        if entries not in ("all", "distinct"):
            raise ConfigError(f"rkd entries must be 'all' (the official mean) or 'distinct', got {entries!r}")
        self.distance_weight, self.angle_weight, self.entries = distance_weight, angle_weight, entries

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        [(s, t)] = self.feature_pairs(student, teacher)
        s, t = flat(s).float(), flat(t).float()
        d_s, d_t = distance_potential(s), distance_potential(t)
        a_s, a_t = angle_potential(s), angle_potential(t)
        if self.entries == "distinct":
            n = len(s)
            pairs = ~torch.eye(n, dtype=torch.bool, device=s.device)
            triplets = pairs[:, :, None] & pairs[:, None, :] & pairs[None, :, :]
            zero = s.sum() * 0.0  # too few samples for pairs or triplets: no loss, but still a graph
            distance = F.smooth_l1_loss(d_s[pairs], d_t[pairs]) if n > 1 else zero
            angle = F.smooth_l1_loss(a_s[triplets], a_t[triplets]) if n > 2 else zero
        else:
            distance, angle = F.smooth_l1_loss(d_s, d_t), F.smooth_l1_loss(a_s, a_t)
        return {"distance": self.distance_weight * distance, "angle": self.angle_weight * angle}
