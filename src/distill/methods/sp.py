"""Tung, Mori 2019, "Similarity-Preserving Knowledge Distillation" (ICCV)."""

from typing import Annotated

from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat


def similarity(x: Tensor) -> Tensor:
    """The (N, N) batch similarity matrix Q Q^T of flattened features, each row L2-normalised."""
    q = flat(x)
    return F.normalize(q @ q.t(), dim=1)


@register_method("sp")
class SP(FeatureMethod):
    """total = gamma * sum over pairs of ||G_s - G_t||_F^2 / N^2 + label_weight * CE.

    As RepDistiller's ``distiller_zoo/SP.py`` ("verified by original author"): G = normalize(F F^T)
    row by row, the squared difference summed and divided by the batch size squared; gamma = 3000
    and label weight 1 (``-r 1 -a 0 -b 3000``). G compares every sample of the batch with every
    other, so any widths and spatial sizes fit.
    """

    summary = "similarity-preserving: match the batch's pairwise similarity matrices (Tung & Mori 2019)"
    paper = "Tung, Mori 2019, Similarity-Preserving Knowledge Distillation, ICCV, arXiv:1907.09682"
    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool",
                 gamma: Annotated[float, Field(ge=0)] = 3000.0):
        super().__init__(student_layer, teacher_layer)
        self.gamma = gamma

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        total = 0.0
        for s, t in self.feature_pairs(student, teacher):
            total = total + (similarity(s) - similarity(t)).pow(2).sum() / len(s) ** 2
        return {"similarity": self.gamma * total}
