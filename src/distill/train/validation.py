"""Validation metrics per task, and which one picks the best checkpoint.

Classification selects on the highest accuracy, regression on the lowest MSE. A cohort of peers
(online mode) predicts (N, P, C): every peer is reported as ``<metric>_peer<i>`` and the last
peer, the student, selects the checkpoint.
"""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from distill.evaluate.regression import regression_errors

# task -> (metric, +1 when higher is better / -1 when lower is better)
SELECTION = {"classification": ("val_accuracy", 1.0), "regression": ("val_mse", -1.0),
             "causal_lm": ("val_loss", -1.0)}


def validation_metrics(logits: Tensor, targets: Tensor, task: str = "classification") -> dict[str, float]:
    if logits.dim() == 3:
        peers = [validation_metrics(logits[:, i], targets, task) for i in range(logits.shape[1])]
        out = dict(peers[-1])
        for i, metrics in enumerate(peers):
            out.update({f"{k}_peer{i}": v for k, v in metrics.items()})
        return out
    if task == "regression":
        e = regression_errors(logits, targets)
        return {"val_mse": e["mse"], "val_mae": e["mae"], "val_r2": e["r2"], "val_loss": e["mse"]}
    targets = targets.to(logits.device)
    return {"val_accuracy": float((logits.argmax(-1) == targets).float().mean()),
            "val_loss": float(F.cross_entropy(logits, targets))}


def selection_score(record: dict, task: str) -> float:
    """Higher is better, whatever the task."""
    key, sign = SELECTION[task]
    return sign * record[key]


