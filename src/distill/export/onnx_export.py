"""PyTorch -> ONNX with a dynamic batch dimension, checked against onnxruntime on real samples."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill.export.runtime import ExportError, require_onnx, run_batches, session

INPUT, OUTPUT = "input", "logits"


@dataclass
class ExportResult:
    path: Path
    opset: int
    max_abs_diff: float
    tolerance: float
    checked_samples: int


def _torch_outputs(model: nn.Module, inputs: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model(inputs).float().numpy()


def verify_onnx(model: nn.Module, path: str | Path, inputs: torch.Tensor, atol: float = 1e-4) -> tuple[float, float]:
    """Max |onnxruntime - PyTorch| over ``inputs`` (run as one batch and as batch 1); raises above tolerance.

    The tolerance is ``atol`` scaled by the largest output magnitude (at least 1), so large logits
    are not held to a tighter relative bound than small ones.
    """
    sess = session(path)
    expected = _torch_outputs(model, inputs.contiguous())
    x = inputs.contiguous().numpy()
    diff = max(float(np.abs(run_batches(sess, x, len(x)) - expected).max()),
               float(np.abs(run_batches(sess, x[:1], 1) - expected[:1]).max()))
    tolerance = atol * max(1.0, float(np.abs(expected).max()))
    if not np.isfinite(diff) or diff > tolerance:
        raise ExportError(
            f"{path}: onnxruntime and PyTorch outputs differ by {diff:.3g} (tolerance {tolerance:.3g}); "
            f"the export is wrong, try another --opset or report the model"
        )
    return diff, tolerance


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path, opset: int = 17,
                atol: float = 1e-4) -> ExportResult:
    """Export ``model`` in eval mode (BatchNorm folded into the convolutions) and verify it.

    ``example_input`` should be a small batch of real samples: it traces the graph and checks it.
    The batch dimension is dynamic; the other dimensions are fixed to those of ``example_input``.
    """
    require_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model = model.cpu().eval()
    example = example_input.detach().float().cpu().contiguous()  # channels_last does not exist in ONNX
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
            # onnxscript and ignores opsets below 18; for these small models it is exact and fast.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[INPUT], output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            )
        diff, tolerance = verify_onnx(model, path, example, atol)
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        raise ExportError(f"ONNX export of {type(model).__name__} failed: {str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    return ExportResult(path, opset, diff, tolerance, len(example))
