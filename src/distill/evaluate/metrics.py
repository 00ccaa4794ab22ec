"""Classification metrics. The arithmetic is torchmetrics' (tested, and rank-reduction aware)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def classification_metrics(logits: Tensor, targets: Tensor, num_classes: int,
                           reference_logits: Tensor | None = None, ece_bins: int = 15) -> dict:
    """accuracy, per-class accuracy, cross-entropy, ECE and (given a teacher's logits) top-1 agreement."""
    # torchmetrics imports all its domains (text pulls in transformers and scipy): seconds, so only here.
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassCalibrationError,
        MulticlassConfusionMatrix,
    )

    logits, targets = logits.float().cpu(), targets.cpu()
    accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")(logits, targets)
    per_class = MulticlassAccuracy(num_classes=num_classes, average=None)(logits, targets)
    ece = MulticlassCalibrationError(num_classes=num_classes, n_bins=ece_bins, norm="l1")(logits.softmax(-1), targets)
    result = {
        "accuracy": float(accuracy),
        "per_class_accuracy": [float(a) for a in per_class],
        "cross_entropy": float(F.cross_entropy(logits, targets)),
        "ece": float(ece),
    }
    result["confusion_matrix"] = MulticlassConfusionMatrix(num_classes=num_classes)(logits, targets).tolist()
    result["reliability"] = reliability_bins(logits, targets, ece_bins)
    if reference_logits is not None:
        agree = MulticlassAccuracy(num_classes=num_classes, average="micro")(logits, reference_logits.cpu().argmax(-1))
        result["agreement"] = float(agree)
    return result


def reliability_bins(logits: Tensor, targets: Tensor, n_bins: int = 15) -> list[dict]:
    """Per confidence bin: mean confidence, accuracy and count (the data of a reliability diagram)."""
    probs = logits.float().softmax(-1)
    confidence, predicted = probs.max(-1)
    correct = (predicted == targets).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (confidence > lo) & (confidence <= hi)
        count = int(mask.sum())
        bins.append({
            "lower": float(lo), "upper": float(hi), "count": count,
            "confidence": float(confidence[mask].mean()) if count else None,
            "accuracy": float(correct[mask].mean()) if count else None,
        })
    return bins
