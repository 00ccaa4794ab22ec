"""examples/torchvision_folder.yaml end to end, shortened: a generated PNG folder (3 classes, 16x16), the
torchvision teacher and student from the YAML alone, one epoch each, exported to ONNX and int8; then the
student rebuilt from its checkpoint by `distill evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distill.config import load_config
from distill.pipeline.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("torchvision")
pytest.importorskip("PIL")


def write_pngs(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.numpy(), mode="L").save(folder / f"class{label}" / f"{i:03d}.png")


@pytest.mark.slow
def test_torchvision_folder_example_runs_and_exports(tmp_path):
    pytest.importorskip("onnxruntime")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 48), ("test", 12)):
        labels = torch.arange(n) % 3
        # each class its own brightness, so that one epoch learns something
        images = (labels[:, None, None] * 80 + torch.randint(0, 60, (n, 16, 16), generator=g)).to(torch.uint8)
        write_pngs(tmp_path / "png" / split, images, labels)
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
