"""examples/torchvision_folder.yaml end to end, shortened: a generated PNG folder, torchvision teacher and
student from the YAML alone, one epoch each, exported to ONNX and int8; then rebuilt by `distill evaluate`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from distill.config import load_config
from distill.pipeline.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("torchvision")
pytest.importorskip("PIL")


def folder_writer():
    spec = importlib.util.spec_from_file_location("fashion_mnist_folder", ROOT / "examples" / "fashion_mnist_folder.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_folder_writer_keeps_per_class_images_in_imagefolder_layout(tmp_path):
    writer = folder_writer()
    labels = torch.tensor([0, 1, 0, 1, 0, 2])
    images = torch.arange(6 * 4 * 4, dtype=torch.uint8).reshape(6, 4, 4)
    assert writer.write_folder(images, labels, tmp_path, 3, per_class=2) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-T_shirt_top", "1-Trouser", "2-Pullover"]
    assert len(list((tmp_path / "0-T_shirt_top").glob("*.png"))) == 2


@pytest.mark.slow
def test_torchvision_folder_example_runs_and_exports(tmp_path):
    pytest.importorskip("onnxruntime")
    writer = folder_writer()
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 48), ("test", 12)):
        labels = torch.arange(n) % 3
        # each class its own brightness, so that one epoch learns something
        images = (labels[:, None, None] * 80 + torch.randint(0, 60, (n, 16, 16), generator=g)).to(torch.uint8)
        writer.write_folder(images, labels, tmp_path / "png" / split, 3, per_class=n)
    cfg = load_config(ROOT / "examples" / "torchvision_folder.yaml", [
        f"data.images.train={tmp_path / 'png' / 'train'}", f"data.images.test={tmp_path / 'png' / 'test'}",
        "data.images.val_fraction=0.25", "teacher.train.epochs=1", "student.train.epochs=1",
        "teacher.train.batch_size=16", "student.train.batch_size=16", "cache.views=1",
        "evaluate.latency_repeats=1", "export.latency_repeats=1", "export.calibration_batches=1",
        "export.calibration_batch_size=8", "export.latency_batch=4", "runtime.threads=1"])
    out = tmp_path / "run"
    summary = run_experiment(cfg, out, quiet=True)
    assert summary["models"]["student"]["params"] < summary["models"]["teacher"]["params"]
    report = json.loads((out / "export.json").read_text())
    assert (out / "student.onnx").is_file() and (out / "student.int8.onnx").is_file()
    assert report["max_abs_diff"] <= report["tolerance"]
    from distill.evaluate.checkpoint_eval import evaluate_checkpoint

    result = evaluate_checkpoint(out / "checkpoints" / "student-best.safetensors", latency=False)
    assert result["model"]["name"] == "torchvision:shufflenet_v2_x0_5" and result["samples"] == 12
    assert result["accuracy"] == pytest.approx(summary["models"]["student"]["accuracy"])
