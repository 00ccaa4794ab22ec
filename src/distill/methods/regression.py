"""Regression: supervised training on targets, and distillation of a teacher's predictions.

Outputs are (N, D) predictions and targets are float tensors of the same shape. ``mse_kd`` and
``mae_kd`` differ only in the distance between student and teacher predictions; the label term
against the targets (added by the trainer) is chosen separately with ``hard_loss``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, register_method

DISTANCES = {"mse": F.mse_loss, "l1": F.l1_loss}


def _distance(name: str, method: str, option: str):
    if name not in DISTANCES:
        raise ConfigError(f"method '{method}': {option} must be one of {', '.join(DISTANCES)}, got '{name}'")
    return DISTANCES[name]


@register_method("supervised_regression")
class SupervisedRegression(Method):
    """The label term alone (``loss`` = mse or l1 against the targets), which the trainer adds with weight 1."""

    summary = "regression on the targets only (no teacher): teacher training and the baseline"
    paper = ""
    label_weight = 1.0

    def __init__(self, loss: Literal["mse", "l1"] = "mse"):
        super().__init__()
        _distance(loss, "supervised_regression", "loss")
        self.label_loss = loss

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        return {}


class _RegressionKD(Method):
    """total = alpha * distance(student, teacher) + label_weight * hard_loss(student, targets).

    No paper defines these; the defaults (0.5 and 0.5) are distill's. The trainer adds the label term
    (``hard_loss``: mse or l1; rows with a NaN target are masked). Older configs' ``beta`` is read as
    the label weight.
    """

    distance = "mse"
    label_weight = 0.5
    renamed_options = {"beta": "label_weight"}

    def __init__(self, alpha: Annotated[float, Field(ge=0)] = 0.5, hard_loss: Literal["mse", "l1"] = "mse"):
        super().__init__()
        self.alpha = alpha
        _distance(hard_loss, self.name, "hard_loss")
        self.label_loss = hard_loss

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        return {"soft": self.alpha * DISTANCES[self.distance](student.logits, teacher.logits)}


@register_method("mse_kd")
class MSEKD(_RegressionKD):
    __doc__ = _RegressionKD.__doc__ + " distance = mean squared error."
    summary = "regression: mean squared error to the teacher's predictions plus the label loss on the targets"
    paper = ""
    distance = "mse"


@register_method("mae_kd")
class MAEKD(_RegressionKD):
    __doc__ = _RegressionKD.__doc__ + " distance = mean absolute error (L1), less swayed by outliers."
    summary = "regression: mean absolute (L1) error to the teacher's predictions plus the label loss on the targets"
    paper = ""
    distance = "l1"


def supervised_for(task: str, label_smoothing: float = 0.0) -> Method:
    """The label-only method for a teacher or baseline: cross-entropy, or MSE for regression."""
    from distill.methods.supervised import Supervised

    return SupervisedRegression() if task == "regression" else Supervised(label_smoothing)
