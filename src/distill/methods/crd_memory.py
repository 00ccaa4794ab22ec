"""CRD's official objective (RepDistiller ``crd/memory.py``, ``crd/criterion.py``): memory bank, negatives, NCE.

Used by ``crd`` with ``negatives: memory_bank``. Every training sample has one L2-normalised student
and one teacher embedding in a bank (``n_data x feat_dim`` each, initialised uniformly in
+-1/sqrt(feat_dim / 3)), refreshed with momentum as the sample is seen. Each row is contrasted with
itself (column 0) and ``k`` other samples drawn without replacement from the other classes
(RepDistiller's ``mode='exact'`` sampler); rows without a label draw from every other sample.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F


def initial_memory(n_data: int, feat_dim: int) -> Tensor:
    """``torch.rand(n, d) * 2 stdv - stdv`` with stdv = 1 / sqrt(d / 3), as ``ContrastMemory``."""
    stdv = 1.0 / math.sqrt(feat_dim / 3)
    return torch.rand(n_data, feat_dim) * (2 * stdv) - stdv


def contrast_indices(index: Tensor, targets: Tensor, labels: Tensor, k: int) -> Tensor:
    """(B, k + 1) data-set indices: each row's own index, then k negatives of other classes.

    ``labels`` are the labels of the whole training set (-1 = unlabelled). Drawn without replacement
    unless a row has fewer than k candidates, as ``CIFAR100InstanceSample`` does.
    """
    out = torch.empty(len(index), k + 1, dtype=torch.long)
    positions = torch.arange(len(labels))
    for row, (i, y) in enumerate(zip(index.tolist(), targets.tolist(), strict=True)):
        candidates = positions[labels != y] if y >= 0 else positions[positions != i]
        if len(candidates) >= k:
            chosen = candidates[torch.randperm(len(candidates))[:k]]
        else:
            chosen = candidates[torch.randint(len(candidates), (k,))]
        out[row, 0], out[row, 1:] = i, chosen
    return out.to(index.device)


def memory_scores(memory: Tensor, idx: Tensor, anchors: Tensor, temperature: float) -> Tensor:
    """exp(<memory[idx[b, j]], anchor_b> / T): (B, k + 1), the bank entries fixed (detached)."""
    weights = memory[idx.reshape(-1)].detach().view(*idx.shape, -1)
    return torch.exp(torch.bmm(weights, anchors[:, :, None]).squeeze(-1) / temperature)


def nce_loss(scores: Tensor, n_data: int, eps: float = 1e-7) -> Tensor:
    """``ContrastLoss``: -(sum log D(positive) + sum log(1 - D(negatives))) / B with noise P_n = 1 / n_data."""
    m, noise = scores.shape[1] - 1, 1.0 / n_data
    positive, negative = scores[:, 0], scores[:, 1:]
    log_d1 = torch.log(positive / (positive + m * noise + eps))
    log_d0 = torch.log((m * noise) / (negative + m * noise + eps))
    return -(log_d1.sum() + log_d0.sum()) / len(scores)


@torch.no_grad()
def update_memory(memory: Tensor, index: Tensor, embeddings: Tensor, momentum: float) -> None:
    """memory[i] = normalize(momentum * memory[i] + (1 - momentum) * embedding_i)."""
    mixed = memory[index] * momentum + embeddings.detach() * (1 - momentum)
    memory.index_copy_(0, index, F.normalize(mixed, dim=1, eps=0.0))
