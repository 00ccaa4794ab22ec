"""Plain supervised training: the teacher's own training and the baseline student."""

from torch import Tensor

from distill.data.augment import mixed_cross_entropy
from distill.methods.base import Batch, Method, Needs, Outputs, register_method


@register_method("supervised")
class Supervised(Method):
    summary = "cross-entropy with the labels only (no teacher): teacher training and the baseline"
    paper = ""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        # Mixed inputs (train.mixup/cutmix) get mixed labels.
        return {"hard": mixed_cross_entropy(student.logits, batch.targets, batch.view, self.label_smoothing)}
