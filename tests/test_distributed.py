"""Two gloo processes on CPU follow the same loss trajectory as one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from distill.models.registry import build_model
from distill.train import distributed as dist
from distill.train.checkpoint import save_tensors

EPOCHS = 3


def write_config(tmp_path: Path, distill: dict | None = None) -> Path:
    torch.manual_seed(0)
    teacher = build_model("mlp", (1, 28, 28), 10, hidden=[32])
    save_tensors(tmp_path / "teacher.safetensors", teacher.state_dict())
    cfg = {
        "name": "ddp", "seed": 1,
        "data": {"train_subset": 512, "val_size": 200, "test_subset": 200},
        "teacher": {"model": {"name": "mlp", "hidden": [32]}, "checkpoint": str(tmp_path / "teacher.safetensors")},
        # No BatchNorm in the student: its batch statistics would differ between 64 samples and 2 x 32.
        "student": {"model": {"name": "mlp", "hidden": [16]},
                    "train": {"epochs": EPOCHS, "batch_size": 64, "lr": 0.1}},
        "baseline": False,
        "distill": distill or {"method": "kd"},
        "cache": {"mode": "on", "views": 2, "dtype": "float32"},
        "evaluate": {"latency": False},
        "runtime": {"device": "cpu", "threads": 1},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(config: Path, out: Path, nproc: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    cmd = [sys.executable, "-m", "distill", "run", str(config), "--out", str(out), "--quiet", "--nproc", str(nproc)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def losses(out: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


# fitnets: its regressor trains inside the same DistributedDataParallel module as the student.
FITNETS = {"method": "fitnets", "options": {"student_layer": "2", "teacher_layer": "2", "hint_weight": 1.0}}


@pytest.mark.slow
@pytest.mark.parametrize("distill", [None, FITNETS], ids=["kd", "fitnets"])
def test_two_gloo_processes_match_one_process(tmp_path, fashion_mnist_root, distill):
    config = write_config(tmp_path, distill)
    one, two = run(config, tmp_path / "one", 1), run(config, tmp_path / "two", 2)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    single, double = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(single) == len(double) == EPOCHS  # only rank 0 writes metrics
    assert single[-1] < single[0]  # it does learn, so equal trajectories mean something
    np.testing.assert_allclose(double, single, rtol=1e-4)
    # The cache built in two shards holds the same teacher outputs as the one built whole.
    np.testing.assert_allclose(np.load(tmp_path / "two" / "cache" / "logits.npy"),
                               np.load(tmp_path / "one" / "cache" / "logits.npy"), rtol=1e-5, atol=1e-5)
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two")]
    assert summaries[1]["models"]["student"]["accuracy"] == pytest.approx(
        summaries[0]["models"]["student"]["accuracy"], abs=0.011)
    assert (tmp_path / "two" / "checkpoints" / "student-best.safetensors").is_file()


def test_helpers_are_single_process_no_ops():
    assert (dist.rank(), dist.world_size(), dist.is_main(), dist.active()) == (0, 1, True, False)
    assert dist.all_reduce_sum({"a": 2.0}) == {"a": 2.0}
    assert dist.broadcast_object("x") == "x"
    model = torch.nn.Linear(2, 2)
    assert dist.wrap(model, torch.device("cpu")) is model


def test_interrupted_multi_process_run_names_its_resume_command(tmp_path, monkeypatch, capsys):
    """Ctrl-C reaches torchrun as a SignalException: exit 130 and one resume command that keeps --nproc."""
    import signal

    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from distill.cli import main

    seen = {}

    def interrupted(args):
        seen["relaunched"] = os.environ.get("DISTILL_RELAUNCHED")
        raise SignalException("got SIGINT", sigval=signal.SIGINT)

    monkeypatch.setattr(torchrun, "main", interrupted)
    monkeypatch.delenv("DISTILL_RELAUNCHED", raising=False)
    out = tmp_path / "run"
    config = str(Path(__file__).resolve().parents[1] / "examples" / "quick.yaml")
    code = main(["run", config, "--nproc", "2", "--out", str(out), "--set", "seed=3"])
    err = capsys.readouterr().err
    assert code == 130, err
    assert seen["relaunched"] == "1" and "DISTILL_RELAUNCHED" not in os.environ  # the ranks stay quiet
    assert "interrupted; resume with:" in err and "Traceback" not in err
    assert f"distill run {config} --set=seed=3 --nproc 2 --out {out} --resume" in err


def png_classes(root: Path, n: int, seed: int) -> Path:
    """``n`` 28x28 grayscale PNGs in 4 class folders; each class has its own brightness, so it is learnable."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        c = i % 4
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        pixels = np.clip(rng.normal(40 + 50 * c, 40, (28, 28)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"c{c}" / f"{i}.png")
    return root


@pytest.mark.slow
def test_two_gloo_processes_stream_the_same_batches_as_one(tmp_path):
    """data.stream under torchrun: each rank's loader decodes its share of the files, the cache is built
    in shards from disk, and the run follows the one-process trajectory."""
    config = write_config(tmp_path)
    cfg = yaml.safe_load(config.read_text())
    torch.manual_seed(0)
    save_tensors(tmp_path / "teacher.safetensors", build_model("mlp", (1, 28, 28), 4, hidden=[32]).state_dict())
    images = {"train": str(png_classes(tmp_path / "train", 256, 0)), "test": str(png_classes(tmp_path / "test", 64, 1)),
              "grayscale": True, "val_fraction": 0.25, "mean": [0.5], "std": [0.25]}
    cfg["data"] = {"dataset": "image_folder", "stream": True, "workers": 1, "images": images, "augment": None}
    config.write_text(yaml.safe_dump(cfg))
    one, two = run(config, tmp_path / "one", 1), run(config, tmp_path / "two", 2)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    single, double = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(single) == len(double) == EPOCHS and single[-1] < single[0]
    np.testing.assert_allclose(double, single, rtol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "two" / "cache" / "logits.npy"),
                               np.load(tmp_path / "one" / "cache" / "logits.npy"), rtol=1e-5, atol=1e-5)
