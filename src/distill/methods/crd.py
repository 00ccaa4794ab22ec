"""Tian, Krishnan, Isola 2020, "Contrastive Representation Distillation" (ICLR)."""

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from distill.methods.base import Batch, Outputs, register_method
from distill.methods.features import FeatureMethod, Layers, flat


def contrastive(anchors: Tensor, positives: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """Cross-entropy of picking each anchor's positive among the batch's other positives and the queue."""
    logits = torch.cat([anchors @ positives.t(), anchors @ queue.t()], dim=1) / temperature
    return F.cross_entropy(logits, torch.arange(len(anchors), device=anchors.device))


@register_method("crd")
class CRD(FeatureMethod):
    """total = beta * (L(s -> t) + L(t -> s)) + label_weight * CE.

    Official code: HobbitLong/RepDistiller (``crd/criterion.py``, ``crd/memory.py``). As there,
    trainable linear heads (built in ``setup()``) embed flattened student and teacher features into
    ``feat_dim`` = 128 dimensions, L2-normalised; each direction asks an embedding to pick its own
    counterpart among ``queue_size`` = 16384 negatives at temperature ``nce_t`` = 0.07, both
    directions summed, weight beta = 0.8 and label weight 1 (``-r 1 -a 0 -b 0.8``). Two differences
    remain, deliberate because they need no per-sample index or data-set size: negatives come from
    the batch and two FIFO queues of recent embeddings (MoCo style) rather than a momentum (0.5)
    memory bank over the whole data set sampled at random, and the objective is the softmax
    (InfoNCE) cross-entropy instead of the NCE estimate with its constant Z. Values are therefore
    not the official loss's; the gradient pulls the same pairs together.
    """

    several_pairs = False
    summary = "contrastive: tell each sample's teacher embedding from queued negatives (Tian et al. 2020)"
    paper = "Tian, Krishnan, Isola 2020, Contrastive Representation Distillation, ICLR, arXiv:1910.10699"

    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool",
                 feat_dim: Annotated[int, Field(ge=1)] = 128, queue_size: Annotated[int, Field(ge=0)] = 16384,
                 nce_t: Annotated[float, Field(gt=0)] = 0.07, beta: Annotated[float, Field(ge=0)] = 0.8):
        super().__init__(student_layer, teacher_layer)
        if queue_size < 0 or feat_dim < 1 or nce_t <= 0:
            raise ValueError("crd needs feat_dim >= 1, queue_size >= 0 and nce_t > 0")
        self.nce_t, self.beta = nce_t, beta
        self.embed_s: nn.Module | None = None
        self.embed_t: nn.Module | None = None
        self.register_buffer("queue_s", torch.zeros(queue_size, feat_dim))
        self.register_buffer("queue_t", torch.zeros(queue_size, feat_dim))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("head", torch.zeros((), dtype=torch.long))

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        super().setup(student, teacher)
        [(s, t)] = self.feature_pairs(student, teacher)
        feat_dim = self.queue_s.shape[1]
        self.embed_s = nn.Linear(flat(s).shape[1], feat_dim)
        self.embed_t = nn.Linear(flat(t).shape[1], feat_dim)

    @torch.no_grad()
    def enqueue(self, z_s: Tensor, z_t: Tensor) -> None:
        size = len(self.queue_s)
        z_s, z_t = z_s[-size:], z_t[-size:]  # a batch larger than the queue keeps its last entries
        slots = (self.head + torch.arange(len(z_s), device=z_s.device)) % max(size, 1)
        self.queue_s[slots], self.queue_t[slots] = z_s, z_t
        self.head.copy_((self.head + len(z_s)) % max(size, 1))
        self.filled.copy_(torch.clamp(self.filled + len(z_s), max=size))

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        if self.embed_s is None or self.embed_t is None:
            raise RuntimeError("crd: call setup() with probe outputs before losses()")
        [(s, t)] = self.feature_pairs(student, teacher)
        z_s = F.normalize(self.embed_s(flat(s)), dim=1)
        z_t = F.normalize(self.embed_t(flat(t)), dim=1)
        n = int(self.filled)  # clone: enqueue() below overwrites the buffers that backward still needs
        loss = (contrastive(z_s, z_t, self.queue_t[:n].clone(), self.nce_t)
                + contrastive(z_t, z_s, self.queue_s[:n].clone(), self.nce_t))
        if self.training and len(self.queue_s) > 0:
            self.enqueue(z_s.detach(), z_t.detach())
        return {"contrastive": self.beta * loss}
