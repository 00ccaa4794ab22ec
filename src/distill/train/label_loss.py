"""The supervised label term, computed once per step by the trainer for every method.

Methods return distillation terms only; this is the one place the labels enter a loss. Rows
without a label are masked here: a classification target of -1 (an unlabelled transfer-set
sample) or a NaN regression target. The mean runs over the labelled rows; a batch with none
gives a zero that still belongs to the graph.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError

REGRESSION_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def labelled_rows(targets: Tensor) -> Tensor:
    """Boolean mask of the rows that carry a label: class >= 0, or a regression target without NaN."""
    if targets.is_floating_point():
        return ~torch.isnan(targets.reshape(len(targets), -1)).any(1)
    return targets >= 0


def label_loss(logits: Tensor, targets: Tensor, task: str = "classification", kind: str | None = None,
               label_smoothing: float = 0.0, all_labelled: bool = False) -> Tensor:
    """Cross-entropy (classification) or ``kind`` = mse | l1 (regression) over the labelled rows.

    ``logits`` of shape (N, P, C) are a cohort of P peers (mode online): each peer gets its own
    cross-entropy and the peers' terms are summed, as in deep mutual learning. ``all_labelled``
    (the caller knows the training set has no unlabelled rows) takes torch's plain mean. Otherwise
    the mask is applied by weighting rows, not by indexing, so neither path costs a host sync per
    step (a GPU would stall on one).
    """
    if task == "regression":
        distance = REGRESSION_LOSSES.get(kind or "mse")
        if distance is None:
            raise ConfigError(f"the regression label loss must be one of {', '.join(REGRESSION_LOSSES)}, got '{kind}'")
        targets = targets.reshape(logits.shape).to(logits.dtype)
        if all_labelled:
            return distance(logits, targets)
        keep = labelled_rows(targets)
        targets = torch.where(keep.reshape(-1, *[1] * (logits.dim() - 1)), targets, logits.detach())
        per_row = distance(logits, targets, reduction="none").reshape(len(logits), -1).mean(1)
        return (per_row * keep).sum() / keep.sum().clamp_min(1)
    if all_labelled:
        if logits.dim() == 3:
            return sum(F.cross_entropy(logits[:, i], targets, label_smoothing=label_smoothing)
                       for i in range(logits.shape[1]))
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    keep = labelled_rows(targets)
    classes = targets.clamp_min(0)
    if logits.dim() == 3:
        per_row = sum(F.cross_entropy(logits[:, i], classes, reduction="none", label_smoothing=label_smoothing)
                      for i in range(logits.shape[1]))
    else:
        per_row = F.cross_entropy(logits, classes, reduction="none", label_smoothing=label_smoothing)
    return (per_row * keep).sum() / keep.sum().clamp_min(1)
