"""Latency (median and p90 after warm-up) and throughput, for onnxruntime and for PyTorch."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill.export.runtime import as_input, example_input, onnx_parameters, session


def time_calls(fn: Callable[[], object], repeats: int = 50, warmup: int = 5) -> dict:
    """Median and 90th percentile of ``repeats`` timed calls of ``fn`` after ``warmup`` untimed ones, in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def _batch(example: np.ndarray, batch_size: int) -> np.ndarray:
    """``batch_size`` copies of the first sample; float stays float32, token ids keep their integer type."""
    example = np.asarray(example)
    dtype = example.dtype if np.issubdtype(example.dtype, np.integer) else np.float32
    return np.ascontiguousarray(np.repeat(example[:1], batch_size, axis=0), dtype=dtype)


def latency_table(call: Callable[[np.ndarray], object], example: np.ndarray, batch_size: int,
                  repeats: int) -> dict:
    """Latency at batch 1 and at ``batch_size``, and samples per second at ``batch_size``."""
    one, many = _batch(example, 1), _batch(example, batch_size)
    b1 = time_calls(lambda: call(one), repeats)
    bn = time_calls(lambda: call(many), max(3, repeats // 4))
    return {
        "batch": batch_size,
        "latency_ms_b1": b1["median_ms"], "latency_ms_b1_p90": b1["p90_ms"],
        "latency_ms_bN": bn["median_ms"], "latency_ms_bN_p90": bn["p90_ms"],
        "throughput_per_s": batch_size / (bn["median_ms"] / 1000.0),
    }


def bench_onnx(path: str | Path, example: np.ndarray | None = None, batch_size: int = 64, repeats: int = 50,
               threads: int | None = None, sequence: int | None = None) -> dict:
    """Cost of an .onnx file under onnxruntime.

    ``example`` defaults to a made-up input of the model's shape and dtype (runtime.example_input):
    noise for images, random token ids of length ``sequence`` for text models.
    """
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    if example is None:
        example = example_input(path, sess, sequence=sequence)
    example = as_input(sess, example)
    from distill.export.macs import onnx_macs

    result = {"model": str(path), "runtime": "onnxruntime", "params": onnx_parameters(path),
              "macs": onnx_macs(path), "size_bytes": Path(path).stat().st_size}
    if example.ndim == 2 and np.issubdtype(example.dtype, np.integer):
        result["sequence"] = int(example.shape[1])
    result.update(latency_table(lambda x: sess.run(None, {name: x}), example, batch_size, repeats))
    result["threads"] = threads or "default"
    return result


def bench_torch(model: nn.Module, example: torch.Tensor, batch_size: int = 64, repeats: int = 50,
                prepare: Callable[[torch.Tensor], torch.Tensor] | None = None, label: str = "pytorch",
                size_bytes: int | None = None, threads: int | None = None) -> dict:
    """Cost of a PyTorch model in eval mode on the CPU (``prepare`` e.g. converts to channels_last).

    ``threads`` sets torch's intra-op threads for the measurement only (None: leave as is).
    """
    from distill.evaluate.cost import multiply_adds, size_on_disk
    from distill.models.registry import count_parameters

    model = model.cpu().eval()
    prepare = prepare or (lambda x: x)

    def call(x: np.ndarray):
        with torch.inference_mode():
            return model(prepare(torch.from_numpy(x)))

    result = {"model": label, "runtime": "pytorch", "params": count_parameters(model),
              "macs": multiply_adds(model, example, prepare),
              "size_bytes": size_bytes if size_bytes is not None else size_on_disk(model)}
    if example.dim() == 2 and not example.is_floating_point():
        result["sequence"] = int(example.shape[1])
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        result.update(latency_table(call, example.detach().cpu().numpy(), batch_size, repeats))
    finally:
        torch.set_num_threads(previous)
    result["threads"] = threads or previous
    return result
