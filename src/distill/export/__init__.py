"""Deploy: ONNX export with verification, int8 post-training quantization, latency benchmarks.

Needs the ``export`` extra (onnx, onnxruntime). The submodules import onnxruntime; this package
itself stays light so that the CLI can register its commands without the extra installed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_onnx", "quantize_int8", "bench_onnx", "bench_torch", "export_model"]


def __getattr__(name: str) -> Any:
    if name == "export_onnx":
        from distill.export.onnx_export import export_onnx
        return export_onnx
    if name == "quantize_int8":
        from distill.export.quantize import quantize_int8
        return quantize_int8
    if name in ("bench_onnx", "bench_torch"):
        from distill.export import bench
        return getattr(bench, name)
    if name == "export_model":
        from distill.export.pipeline import export_model
        return export_model
    raise AttributeError(f"module 'distill.export' has no attribute '{name}'")
