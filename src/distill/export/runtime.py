"""onnxruntime sessions, batched inference and what an .onnx file holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.errors import DistillError

INSTALL_HINT = "install the export extra: pip install -e '.[export]' (onnx and onnxruntime)"


class ExportError(DistillError):
    pass


def require_onnx() -> None:
    """Fail with one clear line when onnx / onnxruntime are missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"ONNX export needs '{exc.name}'; {INSTALL_HINT}") from None


def session(path: str | Path, threads: int | None = None):
    require_onnx()
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"ONNX model not found: {path}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0]}") from None


def run_batches(sess, inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Outputs of the first model output for ``inputs``, ``batch_size`` samples at a time."""
    name = sess.get_inputs()[0].name
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    outs = [sess.run(None, {name: inputs[i : i + batch_size]})[0] for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outs)


def accuracy(sess, inputs: np.ndarray, targets: np.ndarray, batch_size: int = 1000) -> float:
    logits = run_batches(sess, inputs, batch_size)
    return float((logits.argmax(axis=1) == np.asarray(targets)).mean())


def onnx_parameters(path: str | Path) -> int:
    """Number of values stored in the graph's initializers (weights, biases, quantization scales)."""
    require_onnx()
    import onnx

    model = onnx.load(str(path))
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer))


def op_types(path: str | Path) -> set[str]:
    require_onnx()
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}
