"""Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network"."""

from torch import Tensor

from distill.data.augment import mixed_cross_entropy
from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


@register_method("kd")
class KD(Method):
    """total = alpha * soft + beta * hard.

    ``alpha`` multiplies the soft term KL(softmax(t/T) || softmax(s/T)) * T^2 and ``beta`` the
    hard cross-entropy with the labels. (KD_Lib's alpha also weights the soft term;
    torchdistill's alpha weights the hard one.)
    """

    summary = "soft targets at temperature T plus the hard label loss (Hinton et al. 2015)"
    paper = "Hinton, Vinyals, Dean 2015, Distilling the Knowledge in a Neural Network, arXiv:1503.02531"

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, beta: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"kd temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.alpha = alpha
        self.beta = beta

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        soft = kl_with_temperature(student.logits, teacher.logits, self.temperature)
        # Unlabelled transfer-set sentences carry target -1: they get the soft term only; mixed
        # inputs (train.mixup/cutmix) get mixed labels.
        hard = mixed_cross_entropy(student.logits, batch.targets, batch.view)
        return {"soft": self.alpha * soft, "hard": self.beta * hard}
