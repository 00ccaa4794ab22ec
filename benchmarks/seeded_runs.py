"""Shared by benchmarks/speech.py, trees.py and two_way.py: run configs in-process, one thread,
several seeds, and summarise them (mean, spread, paired differences against the baseline of the
same seed, gap recovered). Results are rewritten after every run, so an interrupted benchmark
still leaves its JSON."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from distill.config import load_config  # noqa: E402
from distill.pipeline.experiment import run_experiment  # noqa: E402


def run_config(cfg: dict, run_dir: Path, seed: int) -> dict:
    """One ``distill run`` of ``cfg`` (a dict) with ``seed``, one thread; returns its summary."""
    torch.set_num_threads(1)
    cfg = json.loads(json.dumps(cfg))
    cfg.setdefault("runtime", {})["threads"] = 1
    cfg["seed"] = seed
    return run_experiment(load_config(data=cfg), run_dir, quiet=True)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired(values: list[float], reference: list[float]) -> tuple[float, float]:
    return mean_std([v - r for v, r in zip(values, reference, strict=True)])


def gap_recovered(teacher: float, baseline: float, student: float) -> float | None:
    return None if abs(teacher - baseline) < 1e-12 else (student - baseline) / (teacher - baseline)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


class Clock:
    def __init__(self):
        self.started = time.perf_counter()

    def minutes(self) -> float:
        return (time.perf_counter() - self.started) / 60
