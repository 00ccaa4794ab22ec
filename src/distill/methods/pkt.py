"""Passalis, Tefas 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer" (ECCV)."""

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat


def conditional_probabilities(x: Tensor) -> Tensor:
    """p(j | i) from the cosine kernel K = (cos + 1) / 2 over j != i; the diagonal is 0: (N, N)."""
    q = F.normalize(flat(x).float(), dim=1)
    kernel = ((q @ q.t()) + 1) / 2
    kernel = kernel.masked_fill(torch.eye(len(q), dtype=torch.bool, device=q.device), 0.0)
    return kernel / kernel.sum(1, keepdim=True).clamp_min(1e-12)


@register_method("pkt")
class PKT(FeatureMethod):
    """total = weight * mean over i of KL(P_t(. | i) || P_s(. | i)) + hard_weight * CE.

    Each sample's neighbours in the batch form a probability distribution under the cosine kernel;
    the student matches the teacher's. Features are flattened, so widths need not match. The paper
    trains with the PKT loss alone and gives no weight; 500 is about the weight of the benchmark of
    Tian et al. 2020 (30000 on a mean over N^2 entries at batch size 64), and ``hard_weight`` = 1
    adds the labels (0 for the paper's setting).
    """

    several_pairs = False
    summary = "probabilistic KT: match cosine-kernel neighbour distributions (Passalis & Tefas 2018)"
    paper = ("Passalis, Tefas 2018, Learning Deep Representations with Probabilistic Knowledge Transfer, "
             "ECCV, arXiv:1803.10837")

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool", weight: float = 500.0,
                 hard_weight: float = 1.0, eps: float = 1e-7):
        super().__init__(student_layer, teacher_layer)
        self.weight, self.hard_weight, self.eps = weight, hard_weight, eps

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        [(s, t)] = self.feature_pairs(student, teacher)
        p_s, p_t = conditional_probabilities(s), conditional_probabilities(t)
        kl = (p_t * torch.log((p_t + self.eps) / (p_s + self.eps))).sum(1).mean()
        return {"pkt": self.weight * kl, "hard": self.hard_weight * F.cross_entropy(student.logits, batch.targets)}
