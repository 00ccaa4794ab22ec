"""Huang, You, Wang, Qian, Xu 2022, "Knowledge Distillation from A Stronger Teacher" (DIST, NeurIPS)."""

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Method, Needs, Outputs, register_method


def pearson_distance(a: Tensor, b: Tensor, dim: int) -> Tensor:
    """1 - Pearson correlation between ``a`` and ``b`` along ``dim``, averaged over the other axis."""
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    return (1 - F.cosine_similarity(a, b, dim=dim, eps=1e-8)).mean()


@register_method("dist")
class DIST(Method):
    """total = beta * inter + gamma * intra + hard_weight * CE.

    With Y = softmax(logits / tau): inter = tau^2 * mean over samples of (1 - Pearson(Y_s[i], Y_t[i]))
    (how a sample's classes are ranked), intra = tau^2 * mean over classes of
    (1 - Pearson(Y_s[:, j], Y_t[:, j])) (how a class is spread over the batch).
    """

    summary = "inter- and intra-class Pearson correlation of predictions (DIST, Huang et al. 2022)"
    paper = "Huang, You, Wang, Qian, Xu 2022, Knowledge Distillation from A Stronger Teacher, NeurIPS, arXiv:2205.10536"

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, hard_weight: float = 1.0):
        super().__init__()
        if tau <= 0:
            raise ValueError(f"dist tau must be > 0, got {tau}")
        self.beta, self.gamma, self.tau, self.hard_weight = beta, gamma, tau, hard_weight

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        y_s = torch.softmax(student.logits / self.tau, dim=1)
        y_t = torch.softmax(teacher.logits / self.tau, dim=1)
        scale = self.tau**2
        return {
            "inter": self.beta * scale * pearson_distance(y_s, y_t, dim=1),
            "intra": self.gamma * scale * pearson_distance(y_s, y_t, dim=0),
            "hard": self.hard_weight * F.cross_entropy(student.logits, batch.targets),
        }
