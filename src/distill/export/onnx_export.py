"""PyTorch -> ONNX with a dynamic batch dimension, checked against onnxruntime on real samples.

Token-id models (integer inputs, the text students and teachers) keep their int64 input and also
get a dynamic sequence dimension: the models give the same logits however much right padding a
batch carries, so a deployment may pad each batch only to its longest sentence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill.data.text import is_token_ids
from distill.export.runtime import ExportError, require_onnx, run_batches, session

INPUT, OUTPUT = "input", "logits"
EXTRA_PADDING = 3  # columns of padding added when checking the dynamic sequence dimension


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
    are not held to a tighter relative bound than small ones. Token ids are also checked with a few
    more padding columns (the model's ``pad_id``) than they came with: the dynamic sequence length.
    """
    sess = session(path)
    inputs = inputs.contiguous()
    expected = _torch_outputs(model, inputs)
    x = inputs.numpy()
    diffs = [np.abs(run_batches(sess, x, len(x)) - expected).max(), np.abs(run_batches(sess, x[:1], 1) - expected[:1]).max()]
    if is_token_ids(inputs) and getattr(model, "pad_id", None) is not None:
        padded = np.pad(x, ((0, 0), (0, EXTRA_PADDING)), constant_values=model.pad_id)
        diffs.append(np.abs(run_batches(sess, padded, len(x)) - expected).max())
    diff = max(float(d) for d in diffs)
    tolerance = atol * max(1.0, float(np.abs(expected).max()))
    if not np.isfinite(diff) or diff > tolerance:
        raise ExportError(
            f"{path}: onnxruntime and PyTorch outputs differ by {diff:.3g} (tolerance {tolerance:.3g}); "
            f"the export is wrong, try another --opset or report the model"
        )
    return diff, tolerance


def write_metadata(path: str | Path, values: dict) -> None:
    """Store ``values`` as the file's metadata_props (strings), e.g. what kind of input it takes."""
    import onnx

    model = onnx.load(str(path))
    for key, value in values.items():
        if value is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
    onnx.save(model, str(path))


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path, opset: int = 17,
                atol: float = 1e-4, metadata: dict | None = None) -> ExportResult:
    """Export ``model`` in eval mode (BatchNorm folded into the convolutions) and verify it.

    ``example_input`` should be a small batch of real samples: it traces the graph and checks it.
    The batch dimension is dynamic. Float inputs (images) keep their other dimensions fixed to those
    of ``example_input``; integer inputs (token ids, shape (N, L)) stay int64 and get a dynamic
    sequence dimension too. ``metadata`` goes into the file's metadata_props.
    """
    require_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model = model.cpu().eval()
    example = example_input.detach().cpu().contiguous()  # channels_last does not exist in ONNX
    if is_token_ids(example):
        example = example.long()
        input_axes = {0: "batch", 1: "sequence"}
    else:
        example = example.float()
        input_axes = {0: "batch"}
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
            # onnxscript and ignores opsets below 18; for these small models it is exact and fast.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[INPUT], output_names=[OUTPUT],
                dynamic_axes={INPUT: input_axes, OUTPUT: {0: "batch"}},
            )
        if metadata:
            write_metadata(path, metadata)
        diff, tolerance = verify_onnx(model, path, example, atol)
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        raise ExportError(f"ONNX export of {type(model).__name__} failed: {str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    return ExportResult(path, opset, diff, tolerance, len(example))
