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


# onnxruntime's input type names -> numpy dtypes (the ones distill's models take).
DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
          "tensor(int64)": np.int64, "tensor(int32)": np.int32}
DEFAULT_SEQUENCE = 64  # token ids per sentence when neither the file nor the caller says


def input_dtype(sess) -> type:
    """The numpy dtype of the model's first input (float32 for images, int64 for token ids)."""
    kind = sess.get_inputs()[0].type
    if kind not in DTYPES:
        raise ExportError(f"unsupported ONNX input type {kind}; distill feeds float or integer tensors")
    return DTYPES[kind]


def as_input(sess, inputs: np.ndarray) -> np.ndarray:
    """``inputs`` as a contiguous array of the dtype the model's input declares."""
    return np.ascontiguousarray(inputs, dtype=input_dtype(sess))


def run_batches(sess, inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Outputs of the first model output for ``inputs``, ``batch_size`` samples at a time."""
    name = sess.get_inputs()[0].name
    inputs = as_input(sess, inputs)
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


def metadata(path: str | Path) -> dict[str, str]:
    """The file's metadata_props (distill writes ``distill.*`` keys; see export_onnx)."""
    require_onnx()
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _vocabulary_bound(path: str | Path, input_name: str) -> int | None:
    """Rows of the smallest embedding table that the input indexes (a Gather on an initializer), if any."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    tables = {t.name: t.dims[0] for t in graph.initializer if len(t.dims) == 2}
    rows = [tables[n.input[0]] for n in graph.node
            if n.op_type == "Gather" and n.input[0] in tables and n.input[1] == input_name]
    return min(rows) if rows else None


def example_input(path: str | Path, sess, batch: int = 1, sequence: int | None = None, seed: int = 0) -> np.ndarray:
    """A made-up input of the model's shape and dtype, for timing only.

    Float inputs (images): standard normal noise. Integer inputs (token ids): random ids in
    [1, min(100, vocabulary)) with no padding, so every sentence is ``sequence`` tokens long;
    ``sequence`` defaults to a fixed length in the file, else its ``distill.max_length``, else 64.
    """
    node = sess.get_inputs()[0]
    dtype = input_dtype(sess)
    if not np.issubdtype(dtype, np.integer):
        shape = [d if isinstance(d, int) else 1 for d in node.shape]
        shape[0] = batch
        return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    meta = metadata(path)
    if sequence is None:
        fixed = node.shape[1] if len(node.shape) > 1 and isinstance(node.shape[1], int) else None
        sequence = fixed or int(meta.get("distill.max_length", DEFAULT_SEQUENCE))
    vocab = int(meta["distill.vocab_size"]) if "distill.vocab_size" in meta else _vocabulary_bound(path, node.name)
    return random_ids(vocab, sequence, int(meta.get("distill.pad_id", 0)), batch, seed).astype(dtype)


def random_ids(vocab: int | None, sequence: int, pad_id: int | None, batch: int = 1, seed: int = 0) -> np.ndarray:
    """Made-up sentences for timing: ids in [1, min(100, vocab)) with the pad id left out, so every
    sentence is ``sequence`` tokens long."""
    high = max(2, min(100, vocab or 100))
    ids = np.random.default_rng(seed).integers(1, high, size=(batch, sequence))
    other = 2 if pad_id == 1 else 1
    if pad_id is not None and 0 < pad_id < high and other < high:
        ids[ids == pad_id] = other
    return ids
