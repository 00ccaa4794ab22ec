"""Yuan, Tay, Li, Wang, Feng 2020, "Revisiting Knowledge Distillation via Label Smoothing
Regularization" (Teacher-free KD, Tf-KD_reg, CVPR)."""

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from distill.methods.base import METHODS, Batch, Method, Needs, Outputs, register_method


def virtual_teacher(targets: Tensor, num_classes: int, correct_prob: float) -> Tensor:
    """p^d: probability ``correct_prob`` on the correct class, (1 - correct_prob) / (K - 1) on each other."""
    p = torch.full((len(targets), num_classes), (1 - correct_prob) / (num_classes - 1), device=targets.device)
    return p.scatter(1, targets[:, None], correct_prob)


@register_method("tfkd")
class TfKD(Method):
    """total = label_weight * CE + alpha * multiplier * KLDivLoss_mean(log_softmax(s), softmax(p^d / T)).

    The official code is yuanli2333/Teacher-free-Knowledge-Distillation (``my_loss_function.py``,
    ``loss_kd_regularization``): the hand-made teacher p^d puts ``correct_prob`` on the label and
    spreads the rest uniformly; it is softened as softmax(p^d / T) (of the probabilities, not of
    their logarithms); the student's logits are *not* divided by T; the KL is ``nn.KLDivLoss()``'s
    mean over all N x K entries times ``multiplier``, and the label term is (1 - alpha) * CE, which
    is this method's default label weight. Defaults are the CIFAR-100 ResNet-18 recipe
    (``base_resnet18/params.json``: reg_temperature 20, reg_alpha 0.1, multiplier 100, and the code's
    correct_prob 0.99); the MobileNetV2 recipe is T 40, alpha 0.95, multiplier 1. No teacher network;
    rows without a label (target -1) have no virtual teacher and are left out. Also registered as
    ``label_smoothing``. Older configs' ``a`` is read as ``correct_prob``.
    """

    summary = "teacher-free KD: a hand-made virtual teacher with probability correct_prob on the label (Yuan et al. 2020)"
    paper = ("Yuan, Tay, Li, Wang, Feng 2020, Revisiting Knowledge Distillation via Label Smoothing "
             "Regularization, CVPR, arXiv:1909.11723")
    label_weight = 0.9  # 1 - the default alpha
    renamed_options = {"a": "correct_prob"}

    def __init__(self, correct_prob: Annotated[float, Field(gt=0, lt=1)] = 0.99,
                 temperature: Annotated[float, Field(gt=0)] = 20.0, alpha: Annotated[float, Field(ge=0, le=1)] = 0.1,
                 multiplier: Annotated[float, Field(ge=0)] = 100.0):
        super().__init__()
        if not 0 < correct_prob < 1:
            raise ValueError(f"tfkd correct_prob (the correct-class probability) must be in (0, 1), got {correct_prob}")
        if temperature <= 0:
            raise ValueError(f"tfkd temperature must be > 0, got {temperature}")
        self.correct_prob, self.temperature, self.alpha, self.multiplier = correct_prob, temperature, alpha, multiplier
        self.label_weight = 1 - alpha  # the official (1 - alpha) * CE; distill.label_weight overrides it

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        logits, labelled = student.logits, batch.targets >= 0
        targets = batch.targets.clamp_min(0)  # rows without a label: a stand-in class, masked below (no host sync)
        soft_teacher = torch.softmax(virtual_teacher(targets, logits.shape[1], self.correct_prob) / self.temperature, 1)
        log_p = torch.log_softmax(logits, 1)
        # nn.KLDivLoss()'s default reduction: the mean over all N x K entries of the labelled rows
        entries = (soft_teacher * (soft_teacher.log() - log_p)).sum(1) * labelled
        kl = entries.sum() / (labelled.sum() * logits.shape[1]).clamp_min(1)
        return {"soft": self.alpha * self.multiplier * kl}


METHODS.register("label_smoothing")(TfKD)
