import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from distill.cli import main
from distill.config import load_config
from distill.train.checkpoint import load_tensors

MODEL_FIELDS = ("accuracy", "params", "size_bytes", "latency_ms_b1", "latency_ms_b256")


def test_quick_run_writes_complete_run_folder(tmp_path, quick_config, fashion_mnist_root, capsys):
    out = tmp_path / "run"
    assert main(["run", str(quick_config), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "fashion_mnist"
    assert set(summary["models"]) == {"teacher", "baseline", "student"}
    for role, entry in summary["models"].items():
        for field in MODEL_FIELDS:
            assert isinstance(entry[field], int | float), (role, field)
        assert 0.0 <= entry["accuracy"] <= 1.0
        assert len(entry["per_class_accuracy"]) == 10
        assert sum(map(sum, entry["confusion_matrix"])) == summary["test_samples"]
    # params and size describe the models the config names: the MLP-32 student on 28x28 inputs
    assert summary["models"]["student"]["params"] == 784 * 32 + 32 + 32 * 10 + 10
    assert summary["models"]["baseline"]["params"] == summary["models"]["student"]["params"]
    assert summary["models"]["student"]["size_bytes"] > 4 * summary["models"]["student"]["params"]
    t, b, s = (summary["models"][r]["accuracy"] for r in ("teacher", "baseline", "student"))
    assert summary["gap_recovered"] == pytest.approx((s - b) / (t - b))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    cfg = load_config(quick_config)
    epochs = {"teacher": cfg.teacher.train.epochs, "baseline": cfg.student.train.epochs,
              "student": cfg.student.train.epochs}
    assert {(r["model"], r["epoch"]) for r in lines} == {(m, e) for m, n in epochs.items() for e in range(1, n + 1)}
    assert (out / "config.yaml").is_file()
    for role in ("teacher", "baseline", "student"):
        assert (out / "checkpoints" / f"{role}-best.safetensors").is_file()
        assert (out / "checkpoints" / f"{role}-last.safetensors").is_file()
    printed = capsys.readouterr().out
    assert "gap recovered" in printed and "baseline" in printed

    # evaluate the saved student checkpoint: on the run's own test split (from its config.yaml),
    # the same test accuracy as the run reported; --dataset: the full Fashion-MNIST test split
    checkpoint = str(out / "checkpoints" / "student-best.safetensors")
    assert main(["evaluate", checkpoint, "--no-latency"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == summary["test_samples"] == 2000
    assert result["accuracy"] == pytest.approx(summary["models"]["student"]["accuracy"])
    assert main(["evaluate", checkpoint, "--no-latency", "--dataset", "fashion_mnist"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 10000 and 0.0 < result["accuracy"] <= 1.0


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("student:\n  train:\n    epocs: 3\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did you mean 'epochs'" in err
    corrupt = tmp_path / "c.safetensors"
    corrupt.write_bytes(b"\x00garbage")
    assert main(["evaluate", str(corrupt)]) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt" in err and err.count("\n") == 0


def test_methods_and_models_listing(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "kd" in out and "supervised" in out
    assert main(["methods", "kd"]) == 0
    out = capsys.readouterr().out
    assert "temperature = 4.0" in out and "Hinton" in out
    assert main(["models"]) == 0
    assert "resnet20" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "run" in capsys.readouterr().out


def test_killed_run_resumes_to_same_weights(tmp_path, quick_config, fashion_mnist_root):
    """SIGKILL a real `distill run` mid-training, resume it, compare with an unbroken run."""
    overrides = ["--set", "student.train.epochs=4", "--set", "teacher.train.epochs=2", "--set", "baseline=false",
                 "--set", "evaluate.latency=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "distill", "run", str(quick_config), "--quiet", *overrides]
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    broken = tmp_path / "broken"
    proc = subprocess.Popen([*command, "--out", str(broken)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = broken / "checkpoints" / "student-trainer-state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    killed_mid_run = not (broken / "summary.json").exists()
    subprocess.run([*command, "--out", str(broken), "--resume"], check=True, env=env, capture_output=True)
    whole, _ = load_tensors(tmp_path / "whole" / "checkpoints" / "student-last.safetensors")
    resumed, _ = load_tensors(broken / "checkpoints" / "student-last.safetensors")
    for key in whole:
        if key.startswith("model."):
            assert torch.equal(whole[key], resumed[key]), key
    assert killed_mid_run, "the run finished before it could be killed; the comparison above still holds"


def test_resume_refuses_changed_config(tmp_path, quick_config, fashion_mnist_root, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.yaml").write_text(quick_config.read_text() + "seed: 99\n")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "teacher-last.safetensors").write_bytes(b"")  # something to resume
    assert main(["run", str(quick_config), "--out", str(out), "--resume"]) == 2
    assert "'seed' is 0 but the run" in capsys.readouterr().err
