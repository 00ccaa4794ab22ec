"""Romero, Ballas, Kahou, Chassang, Gatta, Bengio 2015, "FitNets: Hints for Thin Deep Nets" (ICLR)."""

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, pool_to_common


def conv_regressor(s_shape: torch.Size, t_shape: torch.Size) -> nn.Module | None:
    """RepDistiller's ``ConvReg`` (models/util.py): a convolution sized to the spatial gap, BatchNorm, ReLU.

    Student twice the teacher's height: 3x3 stride 2; half of it: 4x4 transposed convolution, stride 2;
    at least as large: a (1 + dH) x (1 + dW) convolution. None where RepDistiller has no rule (smaller).
    """
    (s_c, s_h, s_w), (t_c, t_h, t_w) = s_shape[1:], t_shape[1:]
    if s_h == 2 * t_h:
        conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
    elif s_h * 2 == t_h:
        conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
    elif s_h >= t_h and s_w >= t_w:
        conv = nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
    else:
        return None
    return nn.Sequential(conv, nn.BatchNorm2d(t_c), nn.ReLU())


@register_method("fitnets")
class FitNets(FeatureMethod):
    """total = hint_weight * sum over pairs of MSE(r(student feature), teacher feature) + label_weight * CE.

    As RepDistiller's FitNet benchmark (``distiller_zoo/FitNet.py`` ``HintLoss``: ``nn.MSELoss`` over all
    elements; ``-r 1 -a 0 -b 100``: hint weight 100, label weight 1), single-stage: hints and labels
    together, where the paper (code: adri-romsor/FitNets, Theano) pre-trains on the hint first. The
    regressor r of (N, C, H, W) maps is RepDistiller's ``ConvReg`` (``regressor: repdistiller``, see
    ``conv_regressor``); ``regressor: conv1x1`` is distill's variant, a 1x1 convolution with the larger
    map average-pooled to the smaller, which fits any pair of sizes. (N, D) or (N, L, D) features use
    a linear layer on the last axis. The regressor is built in ``setup()`` from the probe shapes and
    trained with the student.
    """

    summary = "hints: regress the student's intermediate features onto the teacher's (Romero et al. 2015)"
    paper = "Romero, Ballas, Kahou, Chassang, Gatta, Bengio 2015, FitNets: Hints for Thin Deep Nets, ICLR, arXiv:1412.6550"

    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = None, teacher_layer: Layers = None,
                 hint_weight: Annotated[float, Field(ge=0)] = 100.0,
                 regressor: Literal["repdistiller", "conv1x1"] = "repdistiller"):
        super().__init__(student_layer, teacher_layer)
        if regressor not in ("repdistiller", "conv1x1"):
            raise ConfigError(f"fitnets regressor must be 'repdistiller' or 'conv1x1', got {regressor!r}")
        self.hint_weight, self.regressor = hint_weight, regressor
        self.regressors = nn.ModuleList()

    def check(self, pair: tuple[str, str], s: Tensor, t: Tensor) -> None:
        if s.dim() != t.dim() or s.dim() not in (2, 3, 4):
            raise self.mismatch(pair, s, t, "fitnets needs two (N, C, H, W) maps or two (N, [L,] D) vectors")
        if s.dim() == 3 and s.shape[1] != t.shape[1]:
            raise self.mismatch(pair, s, t, "sequence lengths differ")

    def build(self, pair: tuple[str, str], s: Tensor, t: Tensor) -> nn.Module:
        if s.dim() != 4:
            return nn.Linear(s.shape[-1], t.shape[-1])
        if self.regressor == "conv1x1":
            return nn.Conv2d(s.shape[1], t.shape[1], 1)
        module = conv_regressor(s.shape, t.shape)
        if module is not None:
            with torch.no_grad():
                was_training = module.training
                module.eval()
                fits = module(s[:1].float()).shape[2:] == t.shape[2:]
                module.train(was_training)
        if module is None or not fits:
            raise self.mismatch(pair, s, t, "RepDistiller's regressor maps a student map to a teacher map of half, "
                                            "twice or at most its size; set regressor: conv1x1 to pool instead")
        return module

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        super().setup(student, teacher)
        self.regressors = nn.ModuleList(
            self.build(pair, s, t) for pair, (s, t) in zip(self.pairs, self.feature_pairs(student, teacher), strict=True))

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
