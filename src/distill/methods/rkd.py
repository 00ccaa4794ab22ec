"""Park, Kim, Lu, Cho 2019, "Relational Knowledge Distillation" (CVPR)."""

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat


def distance_potential(x: Tensor) -> Tensor:
    """Pairwise distances divided by their mean over pairs i != j: (N, N)."""
    d = torch.cdist(x, x)
    off = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    return d / d[off].mean().clamp_min(1e-12) if len(x) > 1 else d


def angle_potential(x: Tensor) -> Tensor:
    """cos of the angle at j between i and k, for every ordered triplet (j, i, k): (N, N, N)."""
    e = F.normalize(x[None, :, :] - x[:, None, :], dim=2)  # e[j, i] = unit vector from x_j to x_i
    return e @ e.transpose(1, 2)


@register_method("rkd")
class RKD(FeatureMethod):
    """total = distance_weight * RKD-D + angle_weight * RKD-A + hard_weight * CE.

    RKD-D is the Huber (smooth L1) loss between student and teacher distance potentials over
    pairs i != j; RKD-A the Huber loss between angle potentials over triplets of distinct samples.
    Features are flattened per sample, so widths need not match.
    """

    several_pairs = False
    summary = "relational KD: match pairwise distances and triplet angles of embeddings (Park et al. 2019)"
    paper = "Park, Kim, Lu, Cho 2019, Relational Knowledge Distillation, CVPR, arXiv:1904.05068"

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool",
                 distance_weight: float = 25.0, angle_weight: float = 50.0, hard_weight: float = 1.0):
        super().__init__(student_layer, teacher_layer)
        self.distance_weight, self.angle_weight, self.hard_weight = distance_weight, angle_weight, hard_weight

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        [(s, t)] = self.feature_pairs(student, teacher)
        s, t = flat(s).float(), flat(t).float()
        n = len(s)
        eye = torch.eye(n, dtype=torch.bool, device=s.device)
        pairs = ~eye
        triplets = pairs[:, :, None] & pairs[:, None, :] & pairs[None, :, :]
        zero = s.sum() * 0.0  # too few samples for pairs or triplets: no loss, but still a graph
        distance = (F.smooth_l1_loss(distance_potential(s)[pairs], distance_potential(t)[pairs])
                    if n > 1 else zero)
        angle = (F.smooth_l1_loss(angle_potential(s)[triplets], angle_potential(t)[triplets])
                 if n > 2 else zero)
        return {"distance": self.distance_weight * distance, "angle": self.angle_weight * angle,
                "hard": self.hard_weight * F.cross_entropy(student.logits, batch.targets)}
