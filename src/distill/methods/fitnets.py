"""Romero, Ballas, Kahou, Chassang, Gatta, Bengio 2015, "FitNets: Hints for Thin Deep Nets" (ICLR)."""

from typing import Annotated

from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, pool_to_common


@register_method("fitnets")
class FitNets(FeatureMethod):
    """total = hint_weight * sum over pairs of MSE(r(student feature), teacher feature) + label_weight * CE.

    The loss follows RepDistiller's ``HintLoss`` (``nn.MSELoss`` over all elements) in its single-stage
    form, hints and labels together (``-r 1 -a 0 -b 100``: hint weight 100, label weight 1); the
    paper (code: adri-romsor/FitNets, Theano) pre-trains on the hint first. The regressor r is
    distill's: a 1x1 convolution for (N, C, H, W) maps (RepDistiller's ``ConvReg`` is a convolution
    sized to the spatial gap, then BatchNorm and ReLU), a linear layer on the last axis for (N, D)
    or (N, L, D) features, built in ``setup()`` from the probe shapes and trained with the student.
    When spatial sizes differ, the larger map is average-pooled to the smaller.
    """

    summary = "hints: regress the student's intermediate features onto the teacher's (Romero et al. 2015)"
    paper = "Romero, Ballas, Kahou, Chassang, Gatta, Bengio 2015, FitNets: Hints for Thin Deep Nets, ICLR, arXiv:1412.6550"

    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = None, teacher_layer: Layers = None,
                 hint_weight: Annotated[float, Field(ge=0)] = 100.0):
        super().__init__(student_layer, teacher_layer)
        self.hint_weight = hint_weight
        self.regressors = nn.ModuleList()

    def check(self, pair: tuple[str, str], s: Tensor, t: Tensor) -> None:
        if s.dim() != t.dim() or s.dim() not in (2, 3, 4):
            raise self.mismatch(pair, s, t, "fitnets needs two (N, C, H, W) maps or two (N, [L,] D) vectors")
        if s.dim() == 3 and s.shape[1] != t.shape[1]:
            raise self.mismatch(pair, s, t, "sequence lengths differ")

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        super().setup(student, teacher)
        self.regressors = nn.ModuleList(
            nn.Conv2d(s.shape[1], t.shape[1], 1) if s.dim() == 4 else nn.Linear(s.shape[-1], t.shape[-1])
            for s, t in self.feature_pairs(student, teacher)
        )

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        if len(self.regressors) != len(self.pairs):
            raise RuntimeError("fitnets: call setup() with probe outputs before losses()")
        hint = 0.0
        for regressor, (s, t) in zip(self.regressors, self.feature_pairs(student, teacher), strict=True):
            s = regressor(s)
            if s.dim() == 4:
                s, t = pool_to_common(s, t)
            hint = hint + F.mse_loss(s, t)
        return {"hint": self.hint_weight * hint}
