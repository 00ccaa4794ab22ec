"""Zhang, Xiang, Hospedales, Lu 2018, "Deep Mutual Learning" (CVPR): online distillation.

Used by ``distill.mode: online``: the student's logits are a cohort's (N, P, C) stack.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import Tensor

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, kl_with_temperature, register_method


@register_method("dml")
class DML(Method):
    """For each peer i: label_weight * CE(z_i, y) + alpha * mean over j != i of T^2 KL(p_j^T || p_i^T).

    The paper's loss (Algorithm 1; no code was released with it): each peer's cross-entropy plus the
    mean KL from the other peers, T = 1. The trainer adds every peer's cross-entropy (one label term
    for the cohort, the sum over peers); this method returns the mimicry terms. The other peers'
    distributions are targets (detached), so each peer's gradient comes from its own loss only;
    summing the peers' losses and taking one step updates every peer as in the paper's simultaneous
    variant (the paper also describes alternating updates). Older configs' ``beta`` is read as the
    label weight.
    """

    summary = "deep mutual learning: peers trained together, each mimics the others (mode: online)"
    paper = "Zhang, Xiang, Hospedales, Lu 2018, Deep Mutual Learning, CVPR, arXiv:1706.00384"
    label_weight = 1.0
    renamed_options = {"beta": "label_weight"}

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 1.0, alpha: Annotated[float, Field(ge=0)] = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"dml temperature must be > 0, got {temperature}")
        self.temperature, self.alpha = temperature, alpha

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
                        for j in range(peers) if j != i) / (peers - 1)
            out[f"peer{i}.mutual"] = self.alpha * mimic
        return out
