"""kill -9 at several moments of one run, --resume after each: the result equals an unbroken run's.

One chain on a slice of Fashion-MNIST with tiny MLPs: killed during teacher training, the baseline,
the teacher-cache build and the distilled student (or whatever it reached by the time the kill
landed), resumed each time. Weights, metrics lines (each epoch exactly once) and the absence of
temporary files are compared with an unbroken run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from distill.train.checkpoint import load_tensors
from tests.helpers import subprocess_env

CONFIG = {
    "name": "faults",
    "data": {"train_subset": 1500, "val_size": 200, "test_subset": 200},
    "teacher": {"model": {"name": "mlp", "hidden": [64]}, "train": {"epochs": 2, "batch_size": 32}},
    "student": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 2, "batch_size": 32}},
    "cache": {"mode": "on"},
    "evaluate": {"latency": False},
    "runtime": {"threads": 1},
}


def _epoch(folder, role: str) -> int:
    state = folder / "checkpoints" / f"{role}-trainer-state.json"
    try:
        return json.loads(state.read_text())["epoch"] if state.is_file() else 0
    except (json.JSONDecodeError, OSError):
        return 0


KILL_POINTS = {  # first condition seen while polling -> SIGKILL
    "teacher training": lambda f: _epoch(f, "teacher") >= 1,
    "baseline": lambda f: _epoch(f, "baseline") >= 1,
    "cache build": lambda f: (f / "cache").is_dir() and any((f / "cache").iterdir()),
    "distilled student": lambda f: _epoch(f, "student") >= 1
    or any((f / "checkpoints").glob(".student-*.tmp")),
}


def _command(config, out, *extra):
    return [sys.executable, "-m", "distill", "run", str(config), "--quiet", "--out", str(out), *extra]


def _kill_when(proc, folder, condition, timeout=180) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if condition(folder):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


@pytest.mark.slow
def test_kill_9_at_each_stage_then_resume_equals_unbroken_run(tmp_path, fashion_mnist_root):
    config = tmp_path / "faults.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = subprocess_env()
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run(_command(config, whole), check=True, env=env, capture_output=True)

    killed = []
    proc = subprocess.Popen(_command(config, broken), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for stage, condition in KILL_POINTS.items():
        if _kill_when(proc, broken, condition):
            killed.append(stage)
        elif proc.returncode != 0:
            pytest.fail(f"run failed before '{stage}': {proc.stderr.read().decode()[-500:]}")
        if (broken / "summary.json").exists():
            break
        proc = subprocess.Popen(_command(config, broken, "--resume"), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    if proc.poll() is None or proc.returncode != 0:
        proc.wait()
    assert killed, "no kill landed before the run finished"
    if not (broken / "summary.json").exists():
        done = subprocess.run(_command(config, broken, "--resume"), env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-500:]

    for name in ("teacher-best", "baseline-last", "student-last"):
        a, _ = load_tensors(whole / "checkpoints" / f"{name}.safetensors")
        b, _ = load_tensors(broken / "checkpoints" / f"{name}.safetensors")
        for key in a:
            if key.startswith("model."):
                assert torch.equal(a[key], b[key]), (name, key, killed)
    lines = [json.loads(line) for line in (broken / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert sorted((r["model"], r["epoch"]) for r in lines) == sorted((r["model"], r["epoch"]) for r in expected)
    assert not list(broken.rglob("*.tmp")), list(broken.rglob("*.tmp"))
    assert not (broken / ".lock").exists()
    s_whole = json.loads((whole / "summary.json").read_text())["models"]["student"]["accuracy"]
    s_broken = json.loads((broken / "summary.json").read_text())["models"]["student"]["accuracy"]
    assert s_whole == s_broken
    print(f"killed during: {', '.join(killed)}")
