"""A tiny quick-config run for the report and search tests (seconds, not minutes, on a loaded CPU)."""

from __future__ import annotations

from pathlib import Path

from distill.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "data.train_subset=256", "data.val_size=128", "data.test_subset=128",
    "teacher.model={name: mlp, hidden: [64]}", "student.model={name: mlp, hidden: [16]}",
    "teacher.train.epochs=1", "student.train.epochs=2", "evaluate.latency_repeats=1", "runtime.threads=1",
    # fixed here, so that tuning examples/quick.yaml does not change what these tests expect
    "teacher.train.warmup_epochs=0", "distill.options.temperature=4.0",
]


def tiny_config(path: str = "examples/quick.yaml", extra: list[str] | None = None):
    return load_config(ROOT / path, [*TINY, *(extra or [])])
