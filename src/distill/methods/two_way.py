"""Two-way ("semi-online") distillation: a pretrained teacher keeps learning while it teaches.

Used by ``distill.mode: two_way``. The pair's logits are stacked (N, 2, C): the teacher first, the
student second. Knowledge flows both ways at temperature T:

- student:  alpha * T^2 KL(p_teacher^T || p_student^T)          (Hinton KD, teacher detached)
- teacher:  reverse_weight * T^2 KL(p_student^T || p_teacher^T)  (reverse KD, student detached)

The trainer adds each model's cross-entropy with the labels (one label term for the pair, the sum
over both, weight ``label_weight``, default 0.1 as for kd). The reverse term is the weak signal
back from the student; a small ``reverse_weight`` and the teacher's own, smaller learning rate
(``distill.teacher_lr``) keep the teacher from drifting towards the weaker model. With
``reverse_weight: 0`` and a tiny ``teacher_lr`` this is offline KD.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import Tensor

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


@register_method("two_way")
class TwoWay(Method):
    summary = "a pretrained teacher keeps learning while it teaches: KD to the student, weak reverse KD back"
    paper = ("Hinton, Vinyals, Dean 2015 (KD) with a reverse term as in Zhang et al. 2018, Deep Mutual Learning; "
             "the teacher starts trained (mode: two_way)")
    label_weight = 0.1
    renamed_options = {"beta": "label_weight"}

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 4.0, alpha: Annotated[float, Field(ge=0)] = 0.9,
                 reverse_weight: Annotated[float, Field(ge=0)] = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"two_way temperature must be > 0, got {temperature}")
        self.temperature, self.alpha, self.reverse_weight = temperature, alpha, reverse_weight

    def needs(self) -> Needs:
        return Needs(teacher=False)  # the teacher is inside the trained pair

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        logits = student.logits
        if logits.dim() != 3 or logits.shape[1] != 2:
            raise ConfigError("method 'two_way' trains a (teacher, student) pair (logits N x 2 x C); "
                              "use distill.mode: two_way")
        t, s = logits[:, 0], logits[:, 1]
        return {"student.soft": self.alpha * kl_with_temperature(s, t.detach(), self.temperature),
                "teacher.reverse": self.reverse_weight * kl_with_temperature(t, s.detach(), self.temperature)}
