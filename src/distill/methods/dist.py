"""Huang, You, Wang, Qian, Xu 2022, "Knowledge Distillation from A Stronger Teacher" (DIST, NeurIPS)."""

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from distill.methods.base import Batch, Method, Needs, Outputs, register_method


def pearson_distance(a: Tensor, b: Tensor, dim: int, eps: float = 1e-8) -> Tensor:
    """1 - Pearson correlation of ``a`` and ``b`` along ``dim``, averaged over the other axis.

    The official cosine is ``(a * b).sum / (|a| |b| + eps)``, eps added to the product of the norms.
    """
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    cosine = (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + eps)
    return 1 - cosine.mean()


@register_method("dist")
class DIST(Method):
    """total = beta * inter + gamma * intra + label_weight * CE.

    The official code is hunto/DIST_KD (its classification code lives in hunto/image_classification_sota,
    ``lib/models/losses/dist_kd.py``): with Y = softmax(logits / tau),
    inter = tau^2 * (1 - mean over samples of Pearson(Y_s[i], Y_t[i])) (how a sample's classes are
    ranked) and intra = tau^2 * (1 - mean over classes of Pearson(Y_s[:, j], Y_t[:, j])) (how a
    class is spread over the batch). The official recipes train ``CE + 2 * DIST`` with
    beta = gamma = 1 inside, i.e. beta = gamma = 2 here; tau = 4 on CIFAR-100 (the default) and
    tau = 1 on ImageNet. No label is needed, so unlabelled rows are distilled too.
    """

    summary = "inter- and intra-class Pearson correlation of predictions (DIST, Huang et al. 2022)"
    paper = "Huang, You, Wang, Qian, Xu 2022, Knowledge Distillation from A Stronger Teacher, NeurIPS, arXiv:2205.10536"
    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, beta: Annotated[float, Field(ge=0)] = 2.0, gamma: Annotated[float, Field(ge=0)] = 2.0,
                 tau: Annotated[float, Field(gt=0)] = 4.0):
        super().__init__()
        if tau <= 0:
            raise ValueError(f"dist tau must be > 0, got {tau}")
        self.beta, self.gamma, self.tau = beta, gamma, tau

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
        }
