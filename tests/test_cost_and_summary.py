"""Multiply-adds next to parameters, and what the printed summary says about the gap and the pair's sizes."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

from distill.evaluate.cost import format_macs, multiply_adds
from distill.models.registry import build_model
from distill.report.summary import gap_recovered, print_summary


def conv_macs(cin: int, cout: int, k: int, h: int, w: int) -> int:
    return cout * h * w * cin * k * k  # one multiply-add per weight per output position


def test_multiply_adds_of_a_cnn_by_hand():
    model = build_model("cnn", (1, 28, 28), 10, channels=[8, 16, 32], flatten=True)
    expected = (conv_macs(1, 8, 3, 28, 28) + conv_macs(8, 16, 3, 14, 14) + conv_macs(16, 32, 3, 7, 7)
                + 32 * 7 * 7 * 10)
    assert multiply_adds(model, torch.randn(4, 1, 28, 28)) == expected
    assert model.training  # the count leaves the mode as it was


def test_multiply_adds_of_an_mlp_by_hand():
    model = build_model("mlp", (1, 28, 28), 10, hidden=[32])
    assert multiply_adds(model, torch.randn(1, 1, 28, 28)) == 784 * 32 + 32 * 10


def test_onnx_graph_count_equals_the_torch_count(tmp_path):
    pytest.importorskip("onnx")
    from distill.export.macs import onnx_macs
    from distill.export.onnx_export import export_onnx

    model = build_model("cnn", (1, 12, 12), 10, channels=[4, 8], hidden=16).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, torch.randn(2, 1, 12, 12), path)
    assert onnx_macs(path) == multiply_adds(model, torch.randn(1, 1, 12, 12)) > 0


def test_format_macs():
    assert [format_macs(v) for v in (None, 640, 25_408, 1_919_872, 2_500_000_000)] == \
        ["-", "640", "25.41k", "1.92M", "2.50G"]


def summary(teacher=0.9, baseline=0.8, student=0.85, teacher_params=1000, student_params=100,
            teacher_macs=10_000, student_macs=500, mode="offline") -> dict:
    def entry(acc, params, macs):
        return {"accuracy": acc, "params": params, "macs": macs, "size_bytes": 4 * params,
                "latency_ms_b1": 0.1, "latency_ms_b256": 1.0, "agreement": 0.9}
    return {"name": "t", "dataset": "d", "method": "kd", "mode": mode, "gap_metric": "accuracy",
            "gap_recovered": gap_recovered(teacher, baseline, student),
            "models": {"teacher": entry(teacher, teacher_params, teacher_macs),
                       "baseline": entry(baseline, student_params, student_macs),
                       "student": entry(student, student_params, student_macs)}}


def printed(s: dict) -> str:
    console = Console(record=True, width=200)
    print_summary(s, console)
    return console.export_text()


def test_summary_shows_gap_macs_and_no_warning_for_a_good_pair():
    out = printed(summary())
    assert "gap recovered: 50.0%" in out
    assert "MACs" in out and "10.00k" in out and "500" in out
    assert "warning" not in out


@pytest.mark.parametrize("teacher, baseline", [(0.75, 0.80), (0.80, 0.80)])
def test_gap_is_not_a_number_when_the_teacher_is_not_better(teacher, baseline):
    assert gap_recovered(teacher, baseline, 0.7) is None
    out = printed(summary(teacher=teacher, baseline=baseline, student=0.7))
    assert "gap recovered: n/a (teacher not better than baseline)" in out
    assert "%" not in out.split("gap recovered:")[1].splitlines()[0]


def test_warns_when_the_student_is_not_smaller_or_not_cheaper():
    out = printed(summary(teacher_params=24_058, student_params=25_450, teacher_macs=500, student_macs=500))
    assert "warning: the student is not smaller than its teacher (25,450 parameters against 24,058)" in out
    assert "warning: the student is not cheaper than its teacher" in out
    assert "warning" not in printed(summary(teacher_params=24_058, student_params=25_450, mode="reverse"))


def test_run_summary_records_macs(tmp_path, fashion_mnist_root):
    from distill.config.schema import ExperimentConfig
    from distill.pipeline.experiment import run_experiment

    cfg = ExperimentConfig.model_validate({
        "data": {"root": str(fashion_mnist_root), "train_subset": 256, "val_size": 64, "test_subset": 64},
        "teacher": {"model": {"name": "cnn", "channels": [4, 8]}, "train": {"epochs": 1, "batch_size": 64}},
        "student": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1, "batch_size": 64,
                                                                     "mixup": 1.0}},
        "evaluate": {"latency": False}, "runtime": {"threads": 1}})
    result = run_experiment(cfg, tmp_path / "run", quiet=True)
    assert result["models"]["student"]["macs"] == 784 * 8 + 8 * 10
    assert result["models"]["teacher"]["macs"] == multiply_adds(
        build_model("cnn", (1, 28, 28), 10, channels=[4, 8]), torch.zeros(1, 1, 28, 28))
