"""Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language Understanding".

Layer-to-layer matching between a transformer teacher and a transformer student:

* hidden states: MSE(student_hidden @ W, teacher_hidden) for each mapped pair, with a learned
  linear projection W when the widths differ (identity otherwise);
* attention: MSE between the raw (pre-softmax) attention scores of mapped layers, padded
  positions zeroed (TinyBERT fits the unnormalised scores). When the head counts differ the
  maps are averaged over heads first;
* prediction: the soft cross-entropy -sum softmax(t/T) log softmax(s/T), batch mean, without a
  T^2 factor (the official ``soft_cross_entropy``); it equals KL plus the teacher's entropy, so
  its gradient is KD's at T = 1.

Official code: huawei-noah/Pretrained-Language-Model, ``TinyBERT/task_distill.py``, whose
intermediate stage sums ``MSE(student_att, teacher_att)`` (scores <= -100, the masked positions,
set to 0) and ``MSE(fit_dense(student_rep), teacher_rep)``, and whose prediction stage is the
soft cross-entropy alone. distill weights both stages in one loss (``hidden_weight``,
``attention_weight``, ``alpha``; set a weight to 0 for one stage). TinyBERT has no label term:
the default label weight is 0 (``distill.label_weight`` adds one; unlabelled rows are masked).
Older configs' ``beta`` is read as the label weight.

Layers are named by index: 0 is the embedding output, K the output of transformer layer K.
``layers: [[0, 0], [1, 3], [2, 6]]`` maps student layer 1 to teacher layer 3 and so on; pair
(0, t) matches embeddings only (no attention there). The teacher and student must expose the
taps ``hidden.K`` and ``attention.K`` (``hf_classifier`` and ``text_transformer`` do).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, register_method


def soft_cross_entropy(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """-sum_k softmax(t/T)_k log softmax(s/T)_k, averaged over the batch (TinyBERT's prediction loss)."""
    return (-torch.softmax(teacher / temperature, -1) * torch.log_softmax(student / temperature, -1)).sum(-1).mean()


def parse_pairs(layers) -> list[tuple[int, int]]:
    try:
        pairs = [(int(s), int(t)) for s, t in layers]
    except (TypeError, ValueError):
        raise ConfigError(f"tinybert layers must be a list of [student, teacher] pairs, got {layers!r}") from None
    if not pairs or any(s < 0 or t < 0 for s, t in pairs):
        raise ConfigError(f"tinybert layers need at least one pair of non-negative indices, got {layers!r}")
    return pairs


def attention_mse(student: Tensor, teacher: Tensor) -> Tensor:
    if student.shape[1] != teacher.shape[1]:  # different head counts: compare head-averaged maps
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    return F.mse_loss(student, teacher)


@register_method("tinybert")
class TinyBERT(Method):
    summary = "hidden-state and attention-map matching between mapped transformer layers (Jiao et al. 2020)"
    paper = "Jiao et al. 2020, TinyBERT: Distilling BERT for Natural Language Understanding, arXiv:1909.10351"

    label_weight = 0.0
    renamed_options = {"beta": "label_weight"}

    def __init__(self, layers=((0, 0), (1, 3), (2, 6)), hidden_weight: Annotated[float, Field(ge=0)] = 1.0,
                 attention_weight: Annotated[float, Field(ge=0)] = 1.0,
                 temperature: Annotated[float, Field(gt=0)] = 1.0, alpha: Annotated[float, Field(ge=0)] = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"tinybert temperature must be > 0, got {temperature}")
        self.pairs = parse_pairs(layers)
        self.hidden_weight, self.attention_weight = hidden_weight, attention_weight
        self.temperature, self.alpha = temperature, alpha
        self.projections = nn.ModuleDict()

    def needs(self) -> Needs:
        student = [f"hidden.{s}" for s, _ in self.pairs]
        teacher = [f"hidden.{t}" for _, t in self.pairs]
        if self.attention_weight:
            student += [f"attention.{s}" for s, t in self.pairs if s > 0 and t > 0]
            teacher += [f"attention.{t}" for s, t in self.pairs if s > 0 and t > 0]
        return Needs(teacher=True, student_modules=tuple(student), teacher_modules=tuple(teacher))

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        assert teacher is not None
        for s, t in self.pairs:
            ds = student.features[f"hidden.{s}"].shape[-1]
            dt = teacher.features[f"hidden.{t}"].shape[-1]
            if ds != dt and str(s) not in self.projections:
                self.projections[str(s)] = nn.Linear(ds, dt)

    def project(self, s: int, hidden: Tensor) -> Tensor:
        return self.projections[str(s)](hidden) if str(s) in self.projections else hidden

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        sf, tf = student.features, teacher.features
        zero = student.logits.sum() * 0.0
        hidden = sum((F.mse_loss(self.project(s, sf[f"hidden.{s}"]), tf[f"hidden.{t}"]) for s, t in self.pairs),
                     zero)
        out = {"hidden": self.hidden_weight * hidden}
        if self.attention_weight:
            attention = sum((attention_mse(sf[f"attention.{s}"], tf[f"attention.{t}"])
                             for s, t in self.pairs if s > 0 and t > 0), zero)
            out["attention"] = self.attention_weight * attention
        out["soft"] = self.alpha * soft_cross_entropy(student.logits, teacher.logits, self.temperature)
        return out

