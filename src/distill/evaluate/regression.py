"""Test-set regression metrics for the summary: MAE, MSE and R^2."""

from __future__ import annotations

from torch import Tensor


def regression_errors(predictions: Tensor, targets: Tensor) -> dict[str, float | None]:
    """mae, mse and R^2 = 1 - sum((y - p)^2) / sum((y - mean y)^2), in float64."""
    p = predictions.detach().double().cpu().reshape(len(predictions), -1)
    y = targets.detach().double().cpu().reshape(p.shape)
    err = p - y
    total = float(((y - y.mean(0)) ** 2).sum())
    return {"mae": float(err.abs().mean()), "mse": float((err**2).mean()),
            "r2": 1 - float((err**2).sum()) / total if total > 0 else None}


def regression_metrics(predictions: Tensor, targets: Tensor, scale: float = 1.0,
                       reference: Tensor | None = None) -> dict:
    """MAE and MSE in the targets' original units (``scale`` undoes their standardisation) and R^2.

    R^2 is scale-free: 1 is perfect, 0 is as good as predicting the mean. Given the teacher's
    predictions, ``teacher_mse`` is the MSE between student and teacher (how closely it copies).
    """
    e = regression_errors(predictions, targets)
    result = {"mae": e["mae"] * scale, "mse": e["mse"] * scale**2, "r2": e["r2"]}
    if reference is not None:
        result["teacher_mse"] = regression_errors(predictions, reference)["mse"] * scale**2
    return result
