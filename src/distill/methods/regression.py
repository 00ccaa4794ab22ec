"""Regression: supervised training on targets, and distillation of a teacher's predictions.

Outputs are (N, D) predictions and targets are float tensors of the same shape. ``mse_kd`` and
``mae_kd`` differ only in the distance between student and teacher predictions; the hard term
against the targets is chosen separately with ``hard_loss``.
"""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, register_method

DISTANCES = {"mse": F.mse_loss, "l1": F.l1_loss}


def _distance(name: str, method: str):
    if name not in DISTANCES:
        raise ConfigError(f"method '{method}': hard_loss must be one of {', '.join(DISTANCES)}, got '{name}'")
    return DISTANCES[name]


def as_targets(targets: Tensor, predictions: Tensor) -> Tensor:
    """Targets shaped like the predictions: (N,) becomes (N, 1) for a one-output model."""
    return targets.reshape(predictions.shape).to(predictions.dtype)


@register_method("supervised_regression")
class SupervisedRegression(Method):
    summary = "regression on the targets only (no teacher): teacher training and the baseline"
    paper = ""

    def __init__(self, loss: str = "mse"):
        super().__init__()
        self.loss = _distance(loss, "supervised_regression")

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        return {"hard": self.loss(student.logits, as_targets(batch.targets, student.logits))}


class _RegressionKD(Method):
    """total = alpha * distance(student, teacher) + beta * hard_loss(student, targets)."""

    distance = "mse"

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, hard_loss: str = "mse"):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.hard = _distance(hard_loss, self.name)

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        soft = DISTANCES[self.distance](student.logits, teacher.logits)
        hard = self.hard(student.logits, as_targets(batch.targets, student.logits))
        return {"soft": self.alpha * soft, "hard": self.beta * hard}


@register_method("mse_kd")
class MSEKD(_RegressionKD):
    __doc__ = _RegressionKD.__doc__ + " distance = mean squared error."
    summary = "regression: mean squared error to the teacher's predictions plus a hard loss on the targets"
    paper = ""
    distance = "mse"


@register_method("mae_kd")
class MAEKD(_RegressionKD):
    __doc__ = _RegressionKD.__doc__ + " distance = mean absolute error (L1), less swayed by outliers."
    summary = "regression: mean absolute (L1) error to the teacher's predictions plus a hard loss on the targets"
    paper = ""
    distance = "l1"


def supervised_for(task: str, label_smoothing: float = 0.0) -> Method:
    """The label-only method for a teacher or baseline: cross-entropy, or MSE for regression."""
    from distill.methods.supervised import Supervised

    return SupervisedRegression() if task == "regression" else Supervised(label_smoothing)
