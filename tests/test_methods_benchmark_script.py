"""benchmarks/methods_fashion_mnist.py's bookkeeping: tuned labels, the tuning table and the paired targets."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench():
    """A fresh copy of the script's module (add_tuned changes its METHODS and CACHE_GROUPS)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("methods_bench_under_test", ROOT / "benchmarks" / "methods_fashion_mnist.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def tuning_file(tmp_path: Path) -> Path:
    rows = [
        {"method": "at", "knob": "beta", "default": 1000.0, "chosen": 10.0, "chosen_val": 0.9,
         "trials": [{"value": 1000.0, "val": 0.887}, {"value": 100.0, "val": 0.895}, {"value": 10.0, "val": 0.9}]},
        {"method": "dist", "knob": "tau", "default": 4.0, "chosen": 4.0, "chosen_val": 0.903,
         "trials": [{"value": 4.0, "val": 0.903}, {"value": 1.0, "val": 0.899}]},
    ]
    budget = {"seed": 0, "split": "validation", "trials_per_method": 3, "schedule": "20 epochs",
              "sampler": "distill search --sampler grid", "grid": {}}
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps({"budget": budget, "results": rows}))
    return path


def test_only_methods_whose_default_lost_get_a_tuned_label_with_the_chosen_option(bench, tmp_path):
    bench.add_tuned(tuning_file(tmp_path))
    assert "dist (tuned)" not in bench.METHODS  # its default won: dist's own row is the tuned one
    tuned = bench.METHODS["at (tuned)"]
    assert tuned["method"] == "at" and tuned["options"]["beta"] == 10.0
    assert tuned["options"]["student_layer"] == ["features.1", "features.2"]  # the rest of at's section kept
    assert "beta" not in bench.METHODS["at"].get("options", {})  # the default run unchanged
    assert bench.CACHE_GROUPS["at (tuned)"] == bench.CACHE_GROUPS["at"]  # reads the same teacher cache


def test_table_counts_paired_wins_and_lists_every_tried_value(bench, tmp_path):
    tuning = bench.add_tuned(tuning_file(tmp_path))
    rows = []
    for seed, (base, at, tuned) in enumerate([(0.890, 0.880, 0.900), (0.895, 0.884, 0.906), (0.888, 0.879, 0.897)]):
        rows.append({"label": bench.DEMO_LABEL, "seed": seed, "accuracy": base + 0.001, "baseline": base,
                     "teacher": 0.93, "val": 0.9, "baseline_val": 0.9, "seconds_per_epoch": 5.0,
                     "baseline_seconds_per_epoch": 5.0})
        rows.append({"label": "at", "seed": seed, "accuracy": at, "val": 0.88, "seconds_per_epoch": 9.0})
        rows.append({"label": "at (tuned)", "seed": seed, "accuracy": tuned, "val": 0.9, "seconds_per_epoch": 9.0})
    text = bench.table(rows, "cmd", planned=9, elapsed=60.0, tuning=tuning)
    # at (tuned) is ahead on every seed by ~+0.01 with a small spread; the demo recipe by +0.001 with none
    assert "**2** (kd (demo recipe), at (tuned); target >= 8)" in text
    assert "| at | beta | 1000 | 1000: 88.70%, 100: 89.50%, 10: 90.00% | **10** |" in text
    assert "| at (tuned) | 3 |" in text and "+1.00 ± 0.10 pp" in text.split("| at (tuned) |")[1].splitlines()[0]


def test_an_interrupted_run_is_resumed_only_when_its_config_is_unchanged(bench, tmp_path, monkeypatch):
    commands = []

    def fake_run(command, **kwargs):  # stands in for `distill run`: records the command, leaves a finished run
        commands.append(command)
        out = Path(command[command.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"models": {"student": {"accuracy": 0.9, "train_seconds": 20.0}}}))
        (out / "metrics.jsonl").write_text(json.dumps({"model": "student", "val_accuracy": 0.9}) + "\n")
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    args = type("Args", (), {"set": [], "finished_only": False})()

    def interrupted(name: str) -> None:  # a run folder with a resume checkpoint and no summary
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "checkpoints" / "student-last.safetensors").write_bytes(b"")

    interrupted("dist-seed0")
    bench.run_one("dist", 0, bench.METHODS["dist"], args, None, tmp_path)  # first call: no earlier config file
    interrupted("dist-seed1")
    (tmp_path / "dist-seed1.yaml").write_text("an older config\n")
    bench.run_one("dist", 1, bench.METHODS["dist"], args, None, tmp_path)
    interrupted("dkd-seed0")
    bench.run_one("dkd", 0, bench.METHODS["dkd"], args, None, tmp_path)  # writes the config...
    (tmp_path / "dkd-seed0" / "summary.json").unlink()  # ...then is interrupted again
    bench.run_one("dkd", 0, bench.METHODS["dkd"], args, None, tmp_path)
    bench.run_one("kd", 0, bench.METHODS["kd"], args, None, tmp_path)  # a new folder
    flags = [[x for x in c if x in ("--resume", "--overwrite")] for c in commands]
    assert flags == [["--overwrite"], ["--overwrite"], ["--overwrite"], ["--resume"], []]
