"""int8 post-training quantization with onnxruntime.

Models without convolutions (MLPs) get dynamic quantization: int8 weights, activations quantized
on the fly. Convolutional image models get static quantization in QDQ format with per-channel weight
scales, its activation ranges calibrated on batches of training data.

Token-id models (text) always get dynamic quantization, convolutions or not. Their embedding
tables, which hold most of their weights, become int8 (a quantized Gather), linear layers
MatMulInteger and the BiLSTM a DynamicQuantizeLSTM; TextCNN's Conv1d stays fp32 (see
``dynamic_op_types``). Static quantization (not tried on text) would fix each activation's range
from a few calibration batches, while text activations (max over time, attention, recurrent
states) vary with the sentence; dynamic quantization takes each batch's own range and needs no
calibration data. Measured on SST-2 students in docs/export.md ("Text models").

Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only) the u8 x s8 kernels
can saturate their 16-bit intermediate sums with full 8-bit weights. On this project's AVX2 machine
that cost the quick example's CNN teacher 4.5 points of accuracy; with 7-bit weights it loses 0.2.
The reduced range is safe on every CPU, and a quantized file may be deployed anywhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from distill.data.lazy import is_lazy
from distill.export.runtime import ExportError, op_types, require_onnx

METHODS = ("auto", "dynamic", "static")


def takes_token_ids(path: str | Path) -> bool:
    """True when the model's first input is an integer tensor (token ids), not an image."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    elem = graph.input[0].type.tensor_type.elem_type
    return elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)


def choose_method(path: str | Path) -> str:
    """static for image models with convolutions; dynamic for the rest, text models included."""
    return "static" if "Conv" in op_types(path) and not takes_token_ids(path) else "dynamic"


def dynamic_op_types(path: str | Path) -> list[str] | None:
    """The operators dynamic quantization converts: all that onnxruntime can (None) for image models;
    for token-id models all but Conv. TextCNN's Conv1d as ConvInteger kept the accuracy but ran 2.2x
    slower than the fp32 convolution here (AVX2 CPU, onnxruntime 1.32), while its weights are a few
    percent of the model; the int8 embedding table is what makes the file about 4x smaller."""
    if not takes_token_ids(path):
        return None
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    return [op for op in IntegerOpsRegistry if op != "Conv"]


def calibration_batches(inputs: np.ndarray, batches: int, batch_size: int, seed: int = 0) -> list[np.ndarray]:
    """``batches`` random batches drawn without replacement from ``inputs`` (the training split).

    Float inputs become float32; integer inputs (token ids) keep their integer type.
    """
    order = np.random.default_rng(seed).permutation(len(inputs))[: batches * batch_size]
    if is_lazy(inputs):  # files on disk (data.stream): decode only the drawn rows
        inputs, order = inputs.decode_rows(order.tolist()).numpy(), np.arange(len(order))
    inputs = np.asarray(inputs)
    dtype = np.int64 if np.issubdtype(inputs.dtype, np.integer) else np.float32
    data = np.ascontiguousarray(inputs[order], dtype=dtype)
    return [data[i : i + batch_size] for i in range(0, len(data), batch_size)]


def _reader(input_name: str, batches: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def _pre_process(source: str | Path, target: Path) -> None:
    """onnxruntime's quant_pre_process: shape inference + graph optimisation.

    Token-id models skip its symbolic shape inference. That gives up on the transformers' dynamic
    sequence length (their position embeddings slice a table by min(512, sequence)), and when it
    does it writes sym_shape_infer_temp.onnx and its weights into the working directory. ONNX's own
    shape inference is enough for dynamic quantization: for the TextCNN and BiLSTM, which it can
    handle, both ways give the same int8 graph and outputs.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(source), str(target), skip_symbolic_shape=takes_token_ids(source))


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration: list[np.ndarray] | None = None,
                  method: str = "auto", per_channel: bool = True) -> str:
    """Write the int8 model to ``out_path``; return the method used ("dynamic" or "static")."""
    require_onnx()
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method not in METHODS:
        raise ExportError(f"unknown quantization method '{method}'; use one of {', '.join(METHODS)}")
    method = choose_method(fp32_path) if method == "auto" else method
    if method == "static" and not calibration:
        raise ExportError("static int8 quantization needs calibration batches from the training data")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _pre_process(fp32_path, prepared)
        if method == "dynamic":
            quantize_dynamic(str(prepared), str(out_path), weight_type=QuantType.QInt8, per_channel=per_channel,
                             reduce_range=True, op_types_to_quantize=dynamic_op_types(fp32_path))
        else:
            import onnx

            input_name = onnx.load(str(prepared)).graph.input[0].name
            quantize_static(str(prepared), str(out_path), _reader(input_name, calibration),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
    return method
