"""Two-way ("semi-online") distillation: a pretrained teacher keeps learning while it teaches.

Used by ``distill.mode: two_way``. The pair's logits are stacked (N, 2, C): the teacher first, the
student second. Knowledge flows both ways at temperature T:

- student:  alpha * T^2 KL(p_teacher^T || p_student^T)          (Hinton KD, teacher detached)
- teacher:  reverse_weight * T^2 KL(p_student^T || p_teacher^T)  (reverse KD, student detached)

plus each model's label loss (``beta`` for the student, ``teacher_beta`` for the teacher). The
reverse term is the weak signal back from the student; a small ``reverse_weight`` and the
teacher's own, smaller learning rate (``distill.teacher_lr``) keep the teacher from drifting
towards the weaker model. With ``reverse_weight: 0`` and ``teacher_lr`` tiny, this is offline KD.
"""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


def two_way_terms(teacher_logits: Tensor, student_logits: Tensor, temperature: float, alpha: float,
                  reverse_weight: float) -> dict[str, Tensor]:
    """The distillation terms only (each direction learns from the other's detached distribution)."""
    return {"student.soft": alpha * kl_with_temperature(student_logits, teacher_logits.detach(), temperature),
            "teacher.reverse": reverse_weight * kl_with_temperature(teacher_logits, student_logits.detach(),
                                                                    temperature)}


@register_method("two_way")
class TwoWay(Method):
    summary = "a pretrained teacher keeps learning while it teaches: KD to the student, weak reverse KD back"
    paper = ("Hinton, Vinyals, Dean 2015 (KD) with a reverse term as in Zhang et al. 2018, Deep Mutual Learning; "
             "the teacher starts trained (mode: two_way)")

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, beta: float = 0.1,
                 reverse_weight: float = 0.1, teacher_beta: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"two_way temperature must be > 0, got {temperature}")
        if min(alpha, beta, reverse_weight, teacher_beta) < 0:
            raise ConfigError("two_way weights (alpha, beta, reverse_weight, teacher_beta) must be >= 0")
        self.temperature, self.alpha, self.beta = temperature, alpha, beta
        self.reverse_weight, self.teacher_beta = reverse_weight, teacher_beta

    def needs(self) -> Needs:
        return Needs(teacher=False)  # the teacher is inside the trained pair

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        logits = student.logits
        if logits.dim() != 3 or logits.shape[1] != 2:
            raise ConfigError("method 'two_way' trains a (teacher, student) pair (logits N x 2 x C); "
                              "use distill.mode: two_way")
        t, s = logits[:, 0], logits[:, 1]
        out = two_way_terms(t, s, self.temperature, self.alpha, self.reverse_weight)
        # The label terms; once the trainer owns the label loss for every peer, these two lines go.
        out["student.hard"] = self.beta * F.cross_entropy(s, batch.targets)
        out["teacher.hard"] = self.teacher_beta * F.cross_entropy(t, batch.targets)
        return out
