"""Sun, Ren, Li, Wang, Cao 2024, "Logit Standardization in Knowledge Distillation" (CVPR)."""

from torch import Tensor
from torch.nn import functional as F

from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


def zscore(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """Standardise each row: subtract its mean, divide by its (population) standard deviation."""
    centred = logits - logits.mean(-1, keepdim=True)
    return centred / (centred.pow(2).mean(-1, keepdim=True).sqrt() + eps)


@register_method("lskd")
class LSKD(Method):
    """total = alpha * KL(softmax(z(t)/T) || softmax(z(s)/T)) * T^2 + beta * CE, z = per-sample z-score.

    Standardising removes each model's logit shift and scale, so the student matches the teacher's
    logit *relations* rather than its magnitude. Defaults are the authors' CIFAR-100 KD+ls recipe:
    base temperature 2, KD weight 9, CE weight 0.1.
    """

    summary = "KD on z-scored logits: match logit relations, not magnitude (Sun et al. 2024)"
    paper = "Sun, Ren, Li, Wang, Cao 2024, Logit Standardization in Knowledge Distillation, CVPR, arXiv:2403.01427"

    def __init__(self, temperature: float = 2.0, alpha: float = 9.0, beta: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"lskd temperature must be > 0, got {temperature}")
        self.temperature, self.alpha, self.beta = temperature, alpha, beta

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        soft = kl_with_temperature(zscore(student.logits), zscore(teacher.logits), self.temperature)
        return {"soft": self.alpha * soft, "hard": self.beta * F.cross_entropy(student.logits, batch.targets)}
