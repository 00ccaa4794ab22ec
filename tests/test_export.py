"""ONNX export, int8 quantization, benchmarks and the export/bench commands, on real Fashion-MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import distill.data.bundle as bundle
from distill.cli import main
from distill.config.schema import DataConfig, ExportConfig
from distill.data.fashion_mnist import load_fashion_mnist
from distill.export.bench import bench_onnx, bench_torch
from distill.export.onnx_export import export_onnx, verify_onnx
from distill.export.pipeline import export_model
from distill.export.quantize import calibration_batches, quantize_int8
from distill.export.runtime import ExportError, accuracy, op_types, run_batches, session
from distill.models.predict import predict
from distill.models.registry import build_model

pytest.importorskip("onnxruntime")

SHAPE = (1, 28, 28)
MODELS = {"mlp": {"hidden": [64]}, "cnn": {"channels": [8, 16]}}


@pytest.fixture(scope="module", autouse=True)
def fast_setup():
    """Read the IDX files once for the module, and time with one thread (the machine may be shared)."""
    raw = load_fashion_mnist()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bundle, "load_fashion_mnist", lambda root=None: raw)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return bundle.load_data(DataConfig(train_subset=2000, val_size=500, test_subset=1000, augment=None))


def warmed(name: str) -> torch.nn.Module:
    """A zoo model whose BatchNorm layers hold non-trivial running statistics."""
    torch.manual_seed(0)
    model = build_model(name, SHAPE, 10, **MODELS[name])
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *SHAPE) * 2 + 0.5)
    return model.eval()


def trained(name: str, data, epochs: int = 2, lr: float = 3e-3) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, SHAPE, 10, **MODELS[name])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = data.train.inputs, data.train.targets
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_round_trip_with_dynamic_batch(name, data, tmp_path):
    model = warmed(name)
    result = export_onnx(model, data.val.inputs[:16], tmp_path / f"{name}.onnx")
    assert result.max_abs_diff <= result.tolerance < 1e-2
    assert "BatchNormalization" not in op_types(result.path)  # folded into the convolutions
    sess = session(result.path)
    assert sess.get_inputs()[0].shape[0] == "batch"
    for batch in (1, 7):
        x = data.test.inputs[:batch]
        expected = predict(model, x).numpy()
        got = run_batches(sess, x.numpy(), batch)
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_verification_rejects_a_wrong_graph(data, tmp_path):
    model = warmed("cnn")
    path = export_onnx(model, data.val.inputs[:8], tmp_path / "cnn.onnx").path
    with torch.no_grad():
        model.head[-1].bias += 0.5  # the file no longer matches the model
    with pytest.raises(ExportError, match="differ by"):
        verify_onnx(model, path, data.val.inputs[:8])


def test_export_of_a_training_model_uses_eval_mode_and_restores_it(data, tmp_path):
    model = warmed("cnn").train()
    export_onnx(model, data.val.inputs[:4], tmp_path / "m.onnx")
    assert model.training


@pytest.mark.parametrize("name,epochs,method,marker,learned", [
    ("mlp", 2, "dynamic", "MatMulInteger", 0.6),
    ("cnn", 4, "static", "QuantizeLinear", 0.5),  # the small CNN learns slower on 2000 samples
])
def test_int8_accuracy_stays_close_to_fp32(name, epochs, method, marker, learned, data, tmp_path):
    model = trained(name, data, epochs, lr=1e-2)
    fp32 = export_onnx(model, data.val.inputs[:16], tmp_path / "m.onnx").path
    batches = calibration_batches(data.train.inputs.numpy(), 8, 32)
    assert quantize_int8(fp32, tmp_path / "m.int8.onnx", batches) == method
    assert marker in op_types(tmp_path / "m.int8.onnx")
    x, y = data.test.inputs.numpy(), data.test.targets.numpy()
    acc32 = accuracy(session(fp32), x, y)
    acc8 = accuracy(session(tmp_path / "m.int8.onnx"), x, y)
    assert acc32 > learned  # chance is 0.1: the model learned something, so the comparison means something
    print(f"{name}: fp32 {acc32:.3f}, int8 {acc8:.3f}")
    assert abs(acc32 - acc8) < 0.03


def test_static_quantization_needs_calibration(data, tmp_path):
    fp32 = export_onnx(warmed("cnn"), data.val.inputs[:4], tmp_path / "m.onnx").path
    with pytest.raises(ExportError, match="calibration"):
        quantize_int8(fp32, tmp_path / "q.onnx", None)


def test_bench_helpers_report_latency_and_throughput(data, tmp_path):
    model = warmed("mlp")
    path = export_onnx(model, data.val.inputs[:4], tmp_path / "m.onnx").path
    for row in (bench_onnx(path, data.test.inputs[:1].numpy(), 8, 5),
                bench_torch(model, data.test.inputs[:1], 8, 5, threads=1)):
        assert row["params"] == 784 * 64 + 64 + 64 * 10 + 10
        assert 0 < row["latency_ms_b1"] <= row["latency_ms_b1_p90"]
        assert 0 < row["latency_ms_bN"] <= row["latency_ms_bN_p90"]
        assert row["throughput_per_s"] == pytest.approx(8 / (row["latency_ms_bN"] / 1000))
        assert row["size_bytes"] > 4 * row["params"] * 0.9


def test_export_model_without_quantization_writes_fp32_only(data, tmp_path):
    report = export_model(warmed("mlp"), data, tmp_path, "m", quantize=None, batch_size=4, repeats=2)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    assert "int8" not in report and report["fp32"]["accuracy"] == pytest.approx(report["pytorch"]["accuracy"])


def test_export_config_validates():
    assert ExportConfig().enabled is False and ExportConfig().quantize == "int8"
    assert ExportConfig(quantize=None).quantize is None
    with pytest.raises(ValidationError):
        ExportConfig(quantize="int4")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """examples/quick.yaml, shortened, with the run's own export block switched on."""
    out = tmp_path_factory.mktemp("run") / "quick"
    code = main(["run", "examples/quick.yaml", "--out", str(out), "--quiet",
                 "--set", "teacher.train.epochs=1", "--set", "student.train.epochs=1", "--set", "baseline=false",
                 "--set", "evaluate.latency=false", "--set", "export.enabled=true",
                 "--set", "export.latency_repeats=3", "--set", "export.calibration_batches=2"])
    assert code == 0
    return out


def test_run_with_export_block_writes_onnx_and_summary_entry(run_dir):
    assert (run_dir / "student.onnx").is_file() and (run_dir / "student.int8.onnx").is_file()
    entry = json.loads((run_dir / "summary.json").read_text())["export"]
    assert entry["max_abs_diff"] <= entry["tolerance"]
    assert entry["int8_method"] == "dynamic"  # quick.yaml's student is an MLP
    assert entry["fp32"]["accuracy"] == pytest.approx(entry["pytorch"]["accuracy"], abs=0.002)
    assert entry["int8"]["size_bytes"] < entry["fp32"]["size_bytes"] / 2


def test_cli_export_and_bench(run_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--format", "onnx", "--quantize", "int8", "--out", str(out),
                 "--repeats", "3", "--batch", "8"]) == 0
    report = json.loads((out / "export.json").read_text())
    assert {p.name for p in out.iterdir()} == {"student.onnx", "student.int8.onnx", "export.json"}
    assert report["model_spec"]["name"] == "mlp" and report["opset"] == 17
    for key in ("fp32", "int8"):
        assert 0.1 < report[key]["accuracy"] <= 1 and report[key]["latency_ms_b1"] > 0
        assert report[key]["size_bytes"] == (out / f"student{'.int8' if key == 'int8' else ''}.onnx").stat().st_size
    assert report["max_abs_diff"] <= report["tolerance"]
    capsys.readouterr()
    ckpt = run_dir / "checkpoints" / "teacher-best.safetensors"
    assert main(["bench", str(out / "student.onnx"), str(out / "student.int8.onnx"), str(ckpt),
                 "--repeats", "3", "--batch", "4", "--json", str(tmp_path / "bench.json")]) == 0
    printed = capsys.readouterr().out
    for text in ("student.onnx", "student.int8.onnx", "teacher-best", "b4 ms", "ort", "torch", "samples/s"):
        assert text in printed
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["runtime"] for r in rows] == ["onnxruntime", "onnxruntime", "pytorch"]


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes(b"not a checkpoint at all")
    (tmp_path / "empty-run").mkdir()
    cases = [
        (["export", str(tmp_path / "missing.safetensors")], "not found"),
        (["export", str(corrupt)], "corrupt"),
        (["export", str(tmp_path / "empty-run")], "not a finished run folder"),
        (["bench", str(tmp_path / "missing.onnx")], "not found"),
        (["bench", str(corrupt)], "corrupt"),
        (["bench", str(tmp_path / "model.pt")], ".onnx or .safetensors"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
