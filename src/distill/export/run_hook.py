"""The `export:` block of `distill run`: export the distilled student into the run folder."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from distill.config.schema import ExportConfig
from distill.data.bundle import DataBundle


def export_student(cfg: ExportConfig, model: nn.Module, data: DataBundle, run_dir: Path, summary: dict) -> None:
    """When enabled, write student.onnx (+ student.int8.onnx, export.json) and add summary["export"]."""
    if not cfg.enabled:
        return
    from distill.export.pipeline import export_model, write_report

    report = export_model(model, data, run_dir, "student", cfg.quantize, cfg.opset, cfg.calibration_batches,
                          cfg.calibration_batch_size, cfg.latency_batch, cfg.latency_repeats, cfg.threads)
    write_report(Path(run_dir) / "export.json", report)
    summary["export"] = report
