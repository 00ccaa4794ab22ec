"""Sun, Ren, Li, Wang, Cao 2024, "Logit Standardization in Knowledge Distillation" (CVPR)."""

from typing import Annotated

from pydantic import Field
from torch import Tensor

from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


def zscore(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """(z - mean) / (eps + std) per row, with the unbiased (n - 1) standard deviation, as the official code."""
    return (logits - logits.mean(-1, keepdim=True)) / (eps + logits.std(-1, keepdim=True))


@register_method("lskd")
class LSKD(Method):
    """total = alpha * KL(softmax(z(t)/T) || softmax(z(s)/T)) * T^2 + label_weight * CE, z = per-row z-score.

    The official code is sunshangquan/logit-standardization-KD (``mdistiller/distillers/KD.py``,
    ``normalize``): ``(logit - mean) / (1e-7 + logit.std(-1))``, torch's unbiased standard deviation,
    then KD's ``kl_div(..., none).sum(1).mean() * T^2``. Standardising removes each model's logit
    shift and scale, so the student matches the teacher's logit *relations*. Defaults are the
    authors' CIFAR-100 KD + ls recipe (``--logit-stand --base-temp 2 --kd-weight 9``, CE weight 0.1);
    it needs no label, so unlabelled rows are distilled too. Older configs' ``beta`` is read as the
    label weight.
    """

    summary = "KD on z-scored logits: match logit relations, not magnitude (Sun et al. 2024)"
    paper = "Sun, Ren, Li, Wang, Cao 2024, Logit Standardization in Knowledge Distillation, CVPR, arXiv:2403.01427"
    label_weight = 0.1
    renamed_options = {"beta": "label_weight"}

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 2.0, alpha: Annotated[float, Field(ge=0)] = 9.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"lskd temperature must be > 0, got {temperature}")
        self.temperature, self.alpha = temperature, alpha

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        soft = kl_with_temperature(zscore(student.logits), zscore(teacher.logits), self.temperature)
        return {"soft": self.alpha * soft}
