"""The supervised label term, computed once per step by the trainer for every method.

Methods return distillation terms only; this is the one place the labels enter a loss. Rows
without a label are masked here: a classification target of -1 (an unlabelled transfer-set
sample) or a NaN regression target. The mean runs over the labelled rows; a batch with none
gives a zero that still belongs to the graph. Nothing here reads a value back to the host (no
per-step device sync): the masks enter the arithmetic instead of choosing a branch.
"""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError

REGRESSION_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}
UNLABELLED = -1


def labelled_rows(targets: Tensor) -> Tensor:
    """Boolean mask of the rows that carry a label: class >= 0, or a regression target without NaN."""
    if targets.is_floating_point():
        return ~targets.reshape(len(targets), -1).isnan().any(1)
    return targets >= 0


def cross_entropy(logits: Tensor, targets: Tensor, label_smoothing: float) -> Tensor:
    """Mean cross-entropy over the rows whose target is not -1; 0 when there are none.

    The summed loss divided by the count equals ``F.cross_entropy``'s mean (bitwise, without label
    smoothing) when every row is labelled.
    """
    total = F.cross_entropy(logits, targets, ignore_index=UNLABELLED, reduction="sum",
                            label_smoothing=label_smoothing)
    return total / (targets != UNLABELLED).sum().clamp_min(1)


def label_loss(logits: Tensor, targets: Tensor, task: str = "classification", kind: str | None = None,
               label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy (classification) or ``kind`` = mse | l1 (regression) over the labelled rows.

    ``logits`` of shape (N, P, C) are a cohort of P peers (mode online): each peer gets its own
    cross-entropy and the peers' terms are summed, as in deep mutual learning.
    """
    if task == "regression":
        distance = REGRESSION_LOSSES.get(kind or "mse")
        if distance is None:
            raise ConfigError(f"the regression label loss must be one of {', '.join(REGRESSION_LOSSES)}, got '{kind}'")
        targets = targets.reshape(logits.shape).to(logits.dtype)
        keep = labelled_rows(targets).reshape(-1, *([1] * (logits.dim() - 1)))
        errors = distance(logits, targets.nan_to_num(), reduction="none") * keep
        return errors.sum() / (keep.sum() * logits[0].numel()).clamp_min(1)
    if logits.dim() == 3:
        return sum(cross_entropy(logits[:, i], targets, label_smoothing) for i in range(logits.shape[1]))
    return cross_entropy(logits, targets, label_smoothing)
