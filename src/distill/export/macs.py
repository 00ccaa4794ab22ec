"""Multiply-adds per sample of an .onnx model, read from its graph (fp32 or int8 alike).

Convolutions and matrix products are counted, as ``evaluate.cost.multiply_adds`` does for a
PyTorch model: a convolution output element costs ``prod(weight.shape[1:])`` (input channels per
group x kernel), a matrix product output element costs the inner dimension. Shapes come from ONNX
shape inference with the batch dimension set to 1; a graph whose other dimensions are not fixed
(sentences of any length) has no single count, and gives None.
"""

from __future__ import annotations

import math
from pathlib import Path

CONVS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}  # op -> position of the weight input
MATMULS = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0, "Gemm": 0, "FusedMatMul": 0}


def onnx_macs(path: str | Path) -> int | None:
    """Multiply-accumulates of one forward pass on one sample; None when the graph's shapes are not fixed."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    try:
        model = shape_inference.infer_shapes(model)
    except Exception:  # a graph onnx cannot infer: no count rather than a failed export
        return None
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    total = 0
    for node in model.graph.node:
        if node.op_type not in CONVS and node.op_type not in MATMULS:
            continue
        out = shapes.get(node.output[0])
        if not out or any(d is None for d in out):
            return None
        if node.op_type in CONVS:
            weight = shapes.get(node.input[CONVS[node.op_type]])
            if not weight:
                return None
            total += math.prod(out[1:]) * math.prod(weight[1:])
        else:
            a = shapes.get(node.input[MATMULS[node.op_type]])
            if not a or a[-1] is None:
                return None
            trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
            inner = a[0] if trans_a and node.op_type == "Gemm" else a[-1]
            # a 2-D output is (batch, features); higher ranks keep the batch in front too
            total += math.prod(out[1:]) * inner
    return int(total)
