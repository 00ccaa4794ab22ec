"""Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network"."""

from typing import Annotated

from pydantic import Field
from torch import Tensor

from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


@register_method("kd")
class KD(Method):
    """total = alpha * soft + label_weight * CE, soft = KL(softmax(t/T) || softmax(s/T)) * T^2 (batch mean).

    As RepDistiller's ``DistillKL`` (``kl_div(..., sum) * T^2 / batch``) and mdistiller's ``kd_loss``;
    defaults are their CIFAR-100 recipe (``-r 0.1 -a 0.9``, T = 4): alpha 0.9 on the soft term and
    label weight 0.1 on the cross-entropy, which the trainer adds (``distill.label_weight``). The soft
    term covers every row, unlabelled transfer-set rows included. ``alpha`` weights the soft term as
    in KD_Lib; torchdistill's ``alpha`` weights the hard one. Older configs' ``beta`` is read as the
    label weight.
    """

    summary = "soft targets at temperature T plus the label loss (Hinton et al. 2015)"
    paper = "Hinton, Vinyals, Dean 2015, Distilling the Knowledge in a Neural Network, arXiv:1503.02531"
    label_weight = 0.1
    renamed_options = {"beta": "label_weight"}

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 4.0,
                 alpha: Annotated[float, Field(ge=0)] = 0.9):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"kd temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.alpha = alpha

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        return {"soft": self.alpha * kl_with_temperature(student.logits, teacher.logits, self.temperature)}
