"""Yuan, Tay, Li, Wang, Feng 2020, "Revisiting Knowledge Distillation via Label Smoothing
Regularization" (Teacher-free KD, Tf-KD_reg, CVPR)."""

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import METHODS, Batch, Method, Needs, Outputs, kl_with_temperature, register_method


def virtual_teacher_log_probs(targets: Tensor, num_classes: int, a: float) -> Tensor:
    """log p^d: probability ``a`` on the correct class, (1 - a) / (K - 1) on each other class."""
    rest = math.log((1 - a) / (num_classes - 1))
    log_p = torch.full((len(targets), num_classes), rest, device=targets.device)
    return log_p.scatter(1, targets[:, None], math.log(a))


@register_method("tfkd")
class TfKD(Method):
    """total = (1 - alpha) * CE + alpha * KL(p^d_T || softmax(s / T)) * T^2, with no teacher network.

    The virtual teacher p^d puts ``a`` on the correct class and spreads the rest uniformly; p^d_T is
    it softened at temperature T (softmax(log p^d / T)). The T^2 factor follows this toolkit's
    ``kd`` so the soft gradient does not vanish at high T. Also registered as ``label_smoothing``.
    """

    summary = "teacher-free KD: a hand-made virtual teacher with probability a on the label (Yuan et al. 2020)"
    paper = ("Yuan, Tay, Li, Wang, Feng 2020, Revisiting Knowledge Distillation via Label Smoothing "
             "Regularization, CVPR, arXiv:1909.11723")

    def __init__(self, a: float = 0.9, temperature: float = 20.0, alpha: float = 0.95):
        super().__init__()
        if not 0 < a < 1:
            raise ValueError(f"tfkd a (the correct-class probability) must be in (0, 1), got {a}")
        if temperature <= 0:
            raise ValueError(f"tfkd temperature must be > 0, got {temperature}")
        self.a, self.temperature, self.alpha = a, temperature, alpha

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        virtual = virtual_teacher_log_probs(batch.targets, student.logits.shape[1], self.a)
        soft = kl_with_temperature(student.logits, virtual, self.temperature)
        return {"soft": self.alpha * soft, "hard": (1 - self.alpha) * F.cross_entropy(student.logits, batch.targets)}


METHODS.register("label_smoothing")(TfKD)
