"""Frosst and Hinton 2017, "Distilling a Neural Network Into a Soft Decision Tree": the tree's loss.

For a student of model ``soft_tree`` (its ``gates``, ``routing`` and ``leaves`` are hooked):

- soft: the expected cross-entropy over the leaves, -sum_l P_l(x) sum_k T_k log Q_lk, where
  T = softmax(teacher / T) are the teacher's soft targets (the paper's loss; its printed formula
  has a stray log, the intended and usual reading is this expectation), batch mean;
- penalty: the balanced-split regulariser C = -lambda sum_i 2^-d_i * 0.5 (log a_i + log(1 - a_i)),
  a_i = sum_x P_i(x) p_i(x) / sum_x P_i(x) the share of the batch node i sends right (P_i: the
  probability of reaching node i, d_i its depth). The paper averages a_i over recent batches;
  here it is the batch's value.

Only these terms are returned and the trainer's label loss is off (``label_weight = 0``): the
paper's loss alone. With ``target: labels`` the same expected cross-entropy is taken against the
one-hot labels instead, which is the tree trained alone with the same loss.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, register_method

HOOKS = ("gates", "routing", "leaves")


def expected_cross_entropy(leaf_p: Tensor, log_q: Tensor, targets: Tensor) -> Tensor:
    """-sum_l P_l sum_k T_k log Q_lk, batch mean; leaf_p (N, L), log_q (L, C), targets (N, C) distributions."""
    return -(leaf_p * (targets @ log_q.T)).sum(dim=1).mean()


def balance_penalty(right: Tensor, reach: Tensor, strength: float) -> Tensor:
    """-strength * sum_i 2^-d_i * 0.5 (log a_i + log(1 - a_i)) over the inner nodes (breadth-first)."""
    inner = right.shape[1]
    reach_inner = reach[:, :inner]
    share = (reach_inner * right).sum(0) / reach_inner.sum(0).clamp_min(1e-12)
    share = share.clamp(1e-6, 1 - 1e-6)
    decay = torch.tensor([2.0 ** -int(math.log2(i + 1)) for i in range(inner)], device=right.device)
    return -strength * (decay * 0.5 * (torch.log(share) + torch.log(1 - share))).sum()


@register_method("soft_tree")
class SoftTree(Method):
    summary = "soft decision tree student: expected leaf cross-entropy with soft targets + balanced splits"
    paper = "Frosst, Hinton 2017, Distilling a Neural Network Into a Soft Decision Tree, arXiv:1711.09784"
    # The paper trains on the expected leaf cross-entropy alone; the trainer's cross-entropy of the
    # tree's output (the leaf mixture) would be another loss, so it is off unless distill.label_weight says.
    label_weight = 0.0

    def __init__(self, temperature: float = 1.0, alpha: float = 1.0, penalty: float = 0.1,
                 target: str = "teacher"):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"soft_tree temperature must be > 0, got {temperature}")
        if target not in ("teacher", "labels"):
            raise ConfigError(f"soft_tree target must be 'teacher' or 'labels', got '{target}'")
        self.temperature, self.alpha, self.penalty, self.target = temperature, alpha, penalty, target

    def needs(self) -> Needs:
        return Needs(teacher=self.target == "teacher", student_modules=HOOKS)

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        missing = [h for h in HOOKS if h not in student.features]
        if missing:
            raise ConfigError("method 'soft_tree' trains a student of model soft_tree; set student.model.name: soft_tree")

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        f = student.features
        inner = f["gates"].shape[1]
        leaf_p, log_q = f["routing"][:, inner:], f["leaves"]
        if self.target == "teacher":
            assert teacher is not None
            targets = torch.softmax(teacher.logits.float() / self.temperature, dim=-1)
        else:
            targets = F.one_hot(batch.targets.clamp_min(0), log_q.shape[1]).float()
        return {"soft": self.alpha * expected_cross_entropy(leaf_p, log_q, targets),
                "penalty": balance_penalty(f["gates"], f["routing"], self.penalty)}
