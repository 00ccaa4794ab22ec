"""Zhang, Xiang, Hospedales, Lu 2018, "Deep Mutual Learning" (CVPR): online distillation.

Used by ``distill.mode: online``: the student's logits are a cohort's (N, P, C) stack.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from torch import Tensor

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


@register_method("dml")
class DML(Method):
    """For each peer i: label_weight * CE(z_i, y) + alpha * (sum or mean over j != i of T^2 KL(p_j^T || p_i^T)).

    The official code is YingZhangDUT/Deep-Mutual-Learning (``train_models.py``, TensorFlow): each
    network's loss is its cross-entropy plus, **summed** over the other networks,
    ``kl_loss_compute`` = batch mean of sum_k p_j log(p_j / p_i) (1e-8 guards), at T = 1; the paper's
    Eq. 10 averages instead (1 / (K - 1)), which ``reduction: mean`` gives; with two peers both are
    the same. The trainer adds every peer's cross-entropy (one label term for the cohort, the sum
    over peers); this method returns the mimicry terms. The other peers' distributions are targets
    (detached), as the official code computes each network's gradient for its own variables only;
    the official code then updates the networks in turn, distill in one step (the paper's
    simultaneous variant). Older configs' ``beta`` is read as the label weight.
    """

    summary = "deep mutual learning: peers trained together, each mimics the others (mode: online)"
    paper = "Zhang, Xiang, Hospedales, Lu 2018, Deep Mutual Learning, CVPR, arXiv:1706.00384"
    label_weight = 1.0
    renamed_options = {"beta": "label_weight"}

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 1.0, alpha: Annotated[float, Field(ge=0)] = 1.0,
                 reduction: Literal["sum", "mean"] = "sum"):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"dml temperature must be > 0, got {temperature}")
        if reduction not in ("sum", "mean"):
            raise ConfigError(f"dml reduction must be 'sum' (the official code) or 'mean' (the paper), got {reduction!r}")
        self.temperature, self.alpha, self.reduction = temperature, alpha, reduction

    def needs(self) -> Needs:
        return Needs(teacher=False)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        logits = student.logits
        if logits.dim() != 3 or logits.shape[1] < 2:
            raise ConfigError("method 'dml' trains a cohort of peers (logits N x P x C); use distill.mode: online")
        peers = logits.shape[1]
        out = {}
        for i in range(peers):
            z = logits[:, i]
            mimic = sum(kl_with_temperature(z, logits[:, j].detach(), self.temperature)
                        for j in range(peers) if j != i)
            if self.reduction == "mean":
                mimic = mimic / (peers - 1)
            out[f"peer{i}.mutual"] = self.alpha * mimic
        return out
