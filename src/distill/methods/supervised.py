"""Plain supervised training: the teacher's own training and the baseline student."""

from typing import Annotated

from pydantic import Field
from torch import Tensor

from distill.methods.base import Batch, Method, Needs, Outputs, register_method


@register_method("supervised")
class Supervised(Method):
    """The label term alone: the trainer's cross-entropy with weight 1 (and ``label_smoothing``); no distillation term."""

    summary = "cross-entropy with the labels only (no teacher): teacher training and the baseline"
    paper = ""
    label_weight = 1.0

    def __init__(self, label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        return {}
