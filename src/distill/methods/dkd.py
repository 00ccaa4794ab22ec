"""Zhao, Cui, Song, Qiu, Liang 2022, "Decoupled Knowledge Distillation" (CVPR)."""

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Method, Needs, Outputs, register_method


def row_kl(log_p_teacher: Tensor, log_p_student: Tensor) -> Tensor:
    """KL(p_t || p_s) per row, from log-probabilities, summed over the last axis."""
    return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)


def decoupled_terms(student: Tensor, teacher: Tensor, targets: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """(TCKD, NCKD), each averaged over the labelled rows (target >= 0) and multiplied by T^2; 0 without any.

    The mask enters the arithmetic (no boolean indexing), so no value is read back to the host.
    """
    labelled = targets >= 0
    targets = targets.clamp_min(0)  # unlabelled rows get a stand-in class; their terms are masked below

    def split(logits: Tensor) -> tuple[Tensor, Tensor]:
        z = logits / temperature
        is_target = F.one_hot(targets, z.shape[1]).bool()
        others = z[~is_target].view(len(z), -1)  # the non-target logits, in class order
        everything = torch.logsumexp(z, 1, keepdim=True)
        # log [p_target, 1 - p_target], and log-softmax over the non-target classes alone.
        binary = torch.cat([z[is_target][:, None], torch.logsumexp(others, 1, keepdim=True)], 1) - everything
        return binary, torch.log_softmax(others, 1)

    s_bin, s_rest = split(student)
    t_bin, t_rest = split(teacher)
    scale = temperature**2 / labelled.sum().clamp_min(1)
    return (row_kl(t_bin, s_bin) * labelled).sum() * scale, (row_kl(t_rest, s_rest) * labelled).sum() * scale


@register_method("dkd")
class DKD(Method):
    """total = ramp * (alpha * TCKD + beta * NCKD) + label_weight * CE.

    The official code is megvii-research/mdistiller (``distillers/DKD.py``): TCKD is the KL between
    the teacher's and student's binary (target, all-other) probabilities, NCKD the KL between their
    distributions over the non-target classes (mdistiller masks the target logit with -1000), both at
    temperature T, summed over classes, divided by the batch size and scaled by T^2; the loss is
    ``CE_WEIGHT * CE + min(epoch / WARMUP, 1) * DKD`` with epochs counted from 1. Computed here in log
    space, which is the same value without the -1000 mask.

    Defaults are mdistiller's CIFAR-100 recipe (res32x4 -> res8x4: CE 1, alpha 1, beta 8, T 4,
    warm-up 20 epochs); its ImageNet recipe is alpha 0.5, beta 0.5, T 1, warm-up 1. With a schedule
    shorter than ``warmup_epochs`` the KD weight never reaches 1: lower it. ``warmup_steps`` > 0 is
    distill's variant: a linear ramp over that many training steps instead of epochs.

    TCKD and NCKD need the label, so they are averaged over the labelled rows only; unlabelled
    transfer-set rows (target -1) add nothing to them (the trainer masks them in the label term too).
    """

    summary = "decoupled KD: target-class and non-target-class KL weighted separately (Zhao et al. 2022)"
    paper = "Zhao, Cui, Song, Qiu, Liang 2022, Decoupled Knowledge Distillation, CVPR, arXiv:2203.08679"
    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, alpha: Annotated[float, Field(ge=0)] = 1.0, beta: Annotated[float, Field(ge=0)] = 8.0,
                 temperature: Annotated[float, Field(gt=0)] = 4.0,
                 warmup_epochs: Annotated[int, Field(ge=0)] = 20, warmup_steps: Annotated[int, Field(ge=0)] = 0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"dkd temperature must be > 0, got {temperature}")
        if warmup_epochs < 0 or warmup_steps < 0:
            raise ValueError("dkd warmup_epochs and warmup_steps must be >= 0")
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.warmup_epochs, self.warmup_steps = warmup_epochs, warmup_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # saved with the checkpoint
        self.epoch = None  # 0-based training epoch, set by the trainer; None outside training

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def ramp(self) -> float:
        if self.warmup_steps > 0:
            return min(float(self.steps) / self.warmup_steps, 1.0)
        if self.warmup_epochs > 0 and self.epoch is not None:
            return min((self.epoch + 1) / self.warmup_epochs, 1.0)
        return 1.0

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        if self.training:
            self.steps += 1
        tckd, nckd = decoupled_terms(student.logits, teacher.logits, batch.targets, self.temperature)
        ramp = self.ramp()
        return {"tckd": ramp * self.alpha * tckd, "nckd": ramp * self.beta * nckd}
