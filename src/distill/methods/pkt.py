"""Passalis, Tefas 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer" (ECCV)."""

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from distill.errors import ConfigError
from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat


def conditional_probabilities(x: Tensor, eps: float, keep_diagonal: bool = True) -> Tensor:
    """p(j | i) from the cosine kernel K = (cos + 1) / 2, each row normalised to sum to 1: (N, N).

    Rows are divided by (norm + eps) as the official code does; without the diagonal, K(i, i) = 0.
    """
    x = flat(x).float()
    q = x / (x.norm(dim=1, keepdim=True) + eps)
    kernel = ((q @ q.t()) + 1) / 2
    if not keep_diagonal:
        kernel = kernel.masked_fill(torch.eye(len(q), dtype=torch.bool, device=q.device), 0.0)
    return kernel / kernel.sum(1, keepdim=True).clamp_min(1e-12)


@register_method("pkt")
class PKT(FeatureMethod):
    """total = weight * mean over i, j of P_t(j | i) log((P_t(j | i) + eps) / (P_s(j | i) + eps)) + label_weight * CE.

    The official code is passalis/probabilistic_kt (``nn/pkt.py``, ``cosine_similarity_loss``),
    copied by RepDistiller: each sample's neighbours in the batch form a distribution under the
    cosine kernel, the sample itself included, and the loss is ``torch.mean`` over all N^2 entries.
    Defaults: weight 30000 and label weight 1 (RepDistiller's CIFAR-100 benchmark, ``-r 1 -a 0 -b
    30000``); the paper trains with the PKT loss alone (``distill.label_weight: 0``).
    ``entries: distinct`` is distill's variant: the diagonal left out and the KL averaged per sample
    (a sum over j, a mean over i), which is about N times the official value. Features are flattened,
    so widths need not match.
    """

    several_pairs = False
    summary = "probabilistic KT: match cosine-kernel neighbour distributions (Passalis & Tefas 2018)"
    paper = ("Passalis, Tefas 2018, Learning Deep Representations with Probabilistic Knowledge Transfer, "
             "ECCV, arXiv:1803.10837")
    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool",
                 weight: Annotated[float, Field(ge=0)] = 30000.0, eps: Annotated[float, Field(gt=0)] = 1e-7,
                 entries: Literal["all", "distinct"] = "all"):
        super().__init__(student_layer, teacher_layer)
        if entries not in ("all", "distinct"):
            raise ConfigError(f"pkt entries must be 'all' (the official mean) or 'distinct', got {entries!r}")
        self.weight, self.eps, self.entries = weight, eps, entries

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        [(s, t)] = self.feature_pairs(student, teacher)
        keep = self.entries == "all"
        p_s = conditional_probabilities(s, self.eps, keep)
        p_t = conditional_probabilities(t, self.eps, keep)
        terms = p_t * torch.log((p_t + self.eps) / (p_s + self.eps))
        kl = terms.mean() if keep else terms.sum(1).mean()
        return {"pkt": self.weight * kl}
