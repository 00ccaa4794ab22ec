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

IGNORE = -100  # causal_lm: a position without a loss
REGRESSION_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def labelled_rows(targets: Tensor) -> Tensor:
    """Boolean mask of the rows that carry a label: class >= 0, or a regression target without NaN."""
    if targets.is_floating_point():
        return ~torch.isnan(targets.reshape(len(targets), -1)).any(1)
    return targets >= 0


def mixed_label_loss(logits: Tensor, targets: Tensor, lam: Tensor, partner_targets: Tensor,
                     label_smoothing: float = 0.0) -> Tensor:
    """Labels mixed like the inputs (mixup/cutmix): lam * CE(y) + (1 - lam) * CE(y_partner) per row.

    A partner without a label leaves the row its own label; rows without a label are masked.
    """
    keep = labelled_rows(targets)
    lam = lam.to(logits.device, logits.dtype)
    partner_targets = partner_targets.to(targets.device)
    own = F.cross_entropy(logits, targets.clamp_min(0), reduction="none", label_smoothing=label_smoothing)
    other = F.cross_entropy(logits, partner_targets.clamp_min(0), reduction="none", label_smoothing=label_smoothing)
    per_row = torch.where(partner_targets >= 0, lam * own + (1 - lam) * other, own)
    return (per_row * keep).sum() / keep.sum().clamp_min(1)


def label_loss(logits: Tensor, targets: Tensor, task: str = "classification", kind: str | None = None,
               label_smoothing: float = 0.0, all_labelled: bool = False, view=None) -> Tensor:
    """Cross-entropy (classification) or ``kind`` = mse | l1 (regression) over the labelled rows.

    ``causal_lm``: token cross-entropy of the (N, V) logits against ``targets[targets != -100]``, the
    mean over the N tokens.

    ``logits`` of shape (N, P, C) are a cohort of P peers (mode online): each peer gets its own
    cross-entropy and the peers' terms are summed, as in deep mutual learning. ``all_labelled``
    (the caller knows the training set has no unlabelled rows) takes torch's plain mean. Otherwise
    the mask is applied by weighting rows, not by indexing, so neither path costs a host sync per
    step (a GPU would stall on one). A ``view`` of mixed inputs (``train.mixup``/``cutmix``, its
    ``mix.lam`` and ``partner_targets``) mixes the labels alike (:func:`mixed_label_loss`).
    """
    if task == "causal_lm":  # (N, V) logits at the N loss positions, row-major (models/causal_lm.py)
        return F.cross_entropy(logits, targets[targets != IGNORE], label_smoothing=label_smoothing)
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
    mix, partner_targets = getattr(view, "mix", None), getattr(view, "partner_targets", None)
    if mix is not None and partner_targets is not None and logits.dim() == 2:
        return mixed_label_loss(logits, targets, mix.lam, partner_targets, label_smoothing)
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
