"""Zhao, Cui, Song, Qiu, Liang 2022, "Decoupled Knowledge Distillation" (CVPR)."""

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Method, Needs, Outputs, register_method


def row_kl(log_p_teacher: Tensor, log_p_student: Tensor) -> Tensor:
    """KL(p_t || p_s) per row, from log-probabilities, summed over the last axis."""
    return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)


def decoupled_terms(student: Tensor, teacher: Tensor, targets: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """(TCKD, NCKD), each averaged over the batch and multiplied by T^2."""

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
    scale = temperature**2
    return row_kl(t_bin, s_bin).mean() * scale, row_kl(t_rest, s_rest).mean() * scale


@register_method("dkd")
class DKD(Method):
    """total = warm-up * (alpha * TCKD + beta * NCKD) + hard_weight * CE.

    TCKD is the KL between the teacher's and student's binary (target, all-other) probabilities;
    NCKD the KL between their distributions over the non-target classes alone, both at
    temperature T and scaled by T^2. ``warmup_steps`` > 0 ramps the KD weight linearly from 0 to 1
    over that many training steps (the paper warms up over its first 20 epochs); 0 turns it off.
    """

    summary = "decoupled KD: target-class and non-target-class KL weighted separately (Zhao et al. 2022)"
    paper = "Zhao, Cui, Song, Qiu, Liang 2022, Decoupled Knowledge Distillation, CVPR, arXiv:2203.08679"

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0,
                 hard_weight: float = 1.0, warmup_steps: int = 0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"dkd temperature must be > 0, got {temperature}")
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.hard_weight, self.warmup_steps = hard_weight, warmup_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # saved with the checkpoint

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        tckd, nckd = decoupled_terms(student.logits, teacher.logits, batch.targets, self.temperature)
        ramp = 1.0
        if self.training:
            self.steps += 1
        if self.warmup_steps > 0:
            ramp = min(float(self.steps) / self.warmup_steps, 1.0)
        return {
            "tckd": ramp * self.alpha * tckd,
            "nckd": ramp * self.beta * nckd,
            "hard": self.hard_weight * F.cross_entropy(student.logits, batch.targets),
        }
