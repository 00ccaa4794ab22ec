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
    if data.meta.get("lm"):  # causal_lm: a Hugging Face directory, not ONNX
        from distill.export.hf_export import HF_DIR, export_hf
        from distill.models.causal_lm import load_lm_tokenizer

        summary["export"] = export_hf(model, load_lm_tokenizer(data.meta["lm"]["tokenizer"]), Path(run_dir) / HF_DIR,
                                      data.test.inputs[:1, :16])
        return
    from distill.export.pipeline import export_model, write_report

    report = export_model(model, data, run_dir, "student", cfg.quantize, cfg.opset, cfg.calibration_batches,
                          cfg.calibration_batch_size, cfg.latency_batch, cfg.latency_repeats, cfg.threads)
    write_report(Path(run_dir) / "export.json", report)
    summary["export"] = report
