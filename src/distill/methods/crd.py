"""Tian, Krishnan, Isola 2020, "Contrastive Representation Distillation" (ICLR)."""

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods import crd_memory as memory
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
    counterpart among ``queue_size`` = 16384 negatives (the official ``nce_k``) at temperature
    ``nce_t`` = 0.07, both directions summed, weight beta = 0.8 and label weight 1
    (``-r 1 -a 0 -b 0.8``).

    ``negatives: memory_bank`` is the official objective (``crd_memory.py``): a momentum (``nce_m``
    0.5) memory bank of every training sample's embeddings, k negatives per row drawn from the other
    classes, and the NCE loss with its normalising constant Z fixed on the first batch. It needs the
    training set's labels and each batch's sample indices (distill's in-memory batches give both)
    and costs a (B, k + 1, feat_dim) gather per step, heavy on a CPU. ``negatives: queue`` (the
    default) is distill's lighter variant: the batch's other samples and two FIFO queues of recent
    embeddings (MoCo style) as negatives, and the softmax (InfoNCE) cross-entropy.
    """

    # distill.train.fsdp refuses it: buffers are not synchronised under FSDP
    fsdp_unsupported = ("keeps a queue (or memory bank) of embeddings that each process updates from its "
                        "own batches")

    several_pairs = False
    summary = "contrastive: tell each sample's teacher embedding from queued negatives (Tian et al. 2020)"
    paper = "Tian, Krishnan, Isola 2020, Contrastive Representation Distillation, ICLR, arXiv:1910.10699"

    label_weight = 1.0
    renamed_options = {"hard_weight": "label_weight"}

    def __init__(self, student_layer: Layers = "pool", teacher_layer: Layers = "pool",
                 feat_dim: Annotated[int, Field(ge=1)] = 128, queue_size: Annotated[int, Field(ge=0)] = 16384,
                 nce_t: Annotated[float, Field(gt=0)] = 0.07, beta: Annotated[float, Field(ge=0)] = 0.8,
                 negatives: Literal["queue", "memory_bank"] = "queue",
                 nce_m: Annotated[float, Field(ge=0, lt=1)] = 0.5):
        super().__init__(student_layer, teacher_layer)
        if queue_size < 0 or feat_dim < 1 or nce_t <= 0:
            raise ValueError("crd needs feat_dim >= 1, queue_size >= 0 and nce_t > 0")
        if negatives not in ("queue", "memory_bank"):
            raise ConfigError(f"crd negatives must be 'queue' or 'memory_bank' (the official), got {negatives!r}")
        self.nce_t, self.beta, self.negatives, self.nce_m, self.k = nce_t, beta, negatives, nce_m, queue_size
        self.embed_s: nn.Module | None = None
        self.embed_t: nn.Module | None = None
        queue = queue_size if negatives == "queue" else 0
        self.register_buffer("queue_s", torch.zeros(queue, feat_dim))
        self.register_buffer("queue_t", torch.zeros(queue, feat_dim))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("head", torch.zeros((), dtype=torch.long))
        # memory_bank: one entry per training sample, sized by setup_data(); Z is set on the first batch.
        self.register_buffer("memory_s", torch.zeros(0, feat_dim))
        self.register_buffer("memory_t", torch.zeros(0, feat_dim))
        self.register_buffer("labels", torch.zeros(0, dtype=torch.long))
        self.register_buffer("z", torch.full((2,), -1.0))

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        super().setup(student, teacher)
        [(s, t)] = self.feature_pairs(student, teacher)
        feat_dim = self.queue_s.shape[1]
        self.embed_s = nn.Linear(flat(s).shape[1], feat_dim)
        self.embed_t = nn.Linear(flat(t).shape[1], feat_dim)

    def setup_data(self, targets: Tensor | None) -> None:
        if self.negatives != "memory_bank":
            return
        if targets is None:
            raise ConfigError("crd negatives: memory_bank needs the training set's labels and sample indices "
                              "(in-memory data); use negatives: queue")
        n, feat_dim = len(targets), self.memory_s.shape[1]
        device = self.memory_s.device
        self.memory_s = memory.initial_memory(n, feat_dim).to(device)
        self.memory_t = memory.initial_memory(n, feat_dim).to(device)
        self.labels = targets.detach().long().to(device)

    @torch.no_grad()
    def enqueue(self, z_s: Tensor, z_t: Tensor) -> None:
        size = len(self.queue_s)
        z_s, z_t = z_s[-size:], z_t[-size:]  # a batch larger than the queue keeps its last entries
        slots = (self.head + torch.arange(len(z_s), device=z_s.device)) % max(size, 1)
        self.queue_s[slots], self.queue_t[slots] = z_s, z_t
        self.head.copy_((self.head + len(z_s)) % max(size, 1))
        self.filled.copy_(torch.clamp(self.filled + len(z_s), max=size))

    def contrast_indices(self, index: Tensor, targets: Tensor) -> Tensor:
        return memory.contrast_indices(index.cpu(), targets.cpu(), self.labels.cpu(), self.k).to(self.memory_s.device)

    def memory_bank_loss(self, z_s: Tensor, z_t: Tensor, batch: Batch) -> Tensor:
        if len(self.memory_s) == 0 or batch.index is None:
            raise ConfigError("crd negatives: memory_bank needs each batch's sample indices and setup_data() with "
                              "the training labels (the trainer does both for in-memory data); use negatives: queue")
        index = batch.index.to(self.memory_s.device)
        idx = self.contrast_indices(index, batch.targets)
        n = len(self.memory_s)
        # As ContrastMemory: student anchors against the teacher bank, teacher anchors against the student bank.
        out_s = memory.memory_scores(self.memory_t, idx, z_s, self.nce_t)
        out_t = memory.memory_scores(self.memory_s, idx, z_t, self.nce_t)
        for i, out in enumerate((out_s, out_t)):
            if float(self.z[i]) < 0:
                self.z[i] = out.detach().mean() * n
        loss = memory.nce_loss(out_s / self.z[0], n) + memory.nce_loss(out_t / self.z[1], n)
        if self.training:
            memory.update_memory(self.memory_s, index, z_s, self.nce_m)
            memory.update_memory(self.memory_t, index, z_t, self.nce_m)
        return loss

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        if self.embed_s is None or self.embed_t is None:
            raise RuntimeError("crd: call setup() with probe outputs before losses()")
        [(s, t)] = self.feature_pairs(student, teacher)
        z_s = F.normalize(self.embed_s(flat(s)), dim=1)
        z_t = F.normalize(self.embed_t(flat(t)), dim=1)
        if self.negatives == "memory_bank":
            return {"contrastive": self.beta * self.memory_bank_loss(z_s, z_t, batch)}
        n = int(self.filled)  # clone: enqueue() below overwrites the buffers that backward still needs
        loss = (contrastive(z_s, z_t, self.queue_t[:n].clone(), self.nce_t)
                + contrastive(z_t, z_s, self.queue_s[:n].clone(), self.nce_t))
        if self.training and len(self.queue_s) > 0:
            self.enqueue(z_s.detach(), z_t.detach())
        return {"contrastive": self.beta * loss}
