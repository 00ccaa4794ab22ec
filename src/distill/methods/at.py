"""Zagoruyko, Komodakis 2017, "Paying More Attention to Attention: Improving the Performance of
Convolutional Neural Networks via Attention Transfer" (ICLR)."""

from typing import Annotated

from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat, pool_to_common


def attention_map(x: Tensor, p: float) -> Tensor:
    """Q = mean over channels of |A|^p, flattened and L2-normalised per sample: (N, H*W)."""
    return F.normalize(flat(x.abs().pow(p).mean(1)), dim=1)


@register_method("at")
class AT(FeatureMethod):
    """total = beta * sum over pairs of mean((Q_s - Q_t)^2) + label_weight * CE.

    The official code is szagoruyko/attention-transfer (``cifar.py``: ``at(x)`` =
    normalize(x.pow(2).mean(1)), ``at_loss`` = (at(x) - at(y)).pow(2).mean(), the loss
    ``distillation(...) + beta * sum(at_losses)`` with beta = 1e3, in the versions of commits 083a612
    and 084890a); RepDistiller, mdistiller and torchdistill use the same ``beta * sum``. The paper's
    Eq. 2 writes beta / 2 times a norm; the code's mean of squares is what its beta = 1e3 was tuned for. Q is the normalised spatial attention map of an
    (N, C, H, W) activation, so channel counts may differ; when spatial sizes differ the larger
    activation is average-pooled to the smaller (as RepDistiller). |A|^p is the paper's; for the
    default p = 2 it equals the code's x.pow(2). Label weight 1 (RepDistiller ``-r 1 -a 0 -b 1000``).
    """

    summary = "attention transfer: match normalised spatial attention maps (Zagoruyko & Komodakis 2017)"
    paper = ("Zagoruyko, Komodakis 2017, Paying More Attention to Attention: Improving the Performance of "
             "Convolutional Neural Networks via Attention Transfer, ICLR, arXiv:1612.03928")
    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = None, teacher_layer: Layers = None,
                 p: Annotated[float, Field(gt=0)] = 2.0, beta: Annotated[float, Field(ge=0)] = 1000.0):
        super().__init__(student_layer, teacher_layer)
        self.p, self.beta = p, beta

    def check(self, pair: tuple[str, str], s: Tensor, t: Tensor) -> None:
        if s.dim() != 4 or t.dim() != 4:
            raise self.mismatch(pair, s, t, "attention transfer needs (N, C, H, W) feature maps on both sides")

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        total = 0.0
        for pair, (s, t) in zip(self.pairs, self.feature_pairs(student, teacher), strict=True):
            self.check(pair, s, t)
            s, t = pool_to_common(s, t)
            total = total + (attention_map(s, self.p) - attention_map(t, self.p)).pow(2).mean()
        return {"attention": self.beta * total}
