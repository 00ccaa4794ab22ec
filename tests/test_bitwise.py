"""A short offline run gives bitwise the same weights as before the package was restructured (issue 16).

The expected hashes were recorded with the original code (commit 20c6c31, before the pipeline,
the bottom layer and the trainer's device-side totals) on this machine's CPU build of torch. An
intended change of the arithmetic (another summation order of the losses, a new default) changes
them: re-record them from the failure message and say why in the commit.
"""

import hashlib

import pytest
import torch
from safetensors.torch import load_file

from distill.config import load_config
from distill.pipeline.experiment import run_experiment

from .tiny_run import ROOT

# teacher, baseline and distilled student weights; test accuracies. Recorded with torch 2.13.0 (CPU).
# The baseline's was re-recorded when it began to train on the distilled student's stored views (the
# cache's 2 views, in the same order) instead of fresh draws: same recipe, down to the data stream.
EXPECTED = {"teacher": "1ea5ccb50ce0a05f", "baseline": "72602e4513ff80b8", "student": "36ff3bb05c8d9057"}
EXPECTED_ACCURACY = {"teacher": 0.078125, "baseline": 0.421875, "student": 0.21875}


def weights_hash(path) -> str:
    tensors, h = load_file(str(path)), hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.skipif(not torch.__version__.startswith("2.13.0"), reason="hashes recorded with torch 2.13.0")
def test_short_offline_run_matches_the_original_code_bitwise(tmp_path, fashion_mnist_root):
    # A conv teacher (channels_last), augmentation with 2 cached views, baseline and KD from the cache.
    cfg = load_config(ROOT / "examples" / "quick.yaml", [
        "data.train_subset=256", "data.val_size=128", "data.test_subset=128",
        "teacher.model={name: cnn, channels: [4, 8, 8]}", "student.model={name: mlp, hidden: [16]}",
        "teacher.train.epochs=1", "student.train.epochs=2", "evaluate.latency=false", "runtime.threads=1",
        "cache.mode=on", "cache.views=2", "teacher.train.warmup_epochs=0", "distill.options.temperature=4.0",
        # pinned: the hashes were recorded with kd's default split (alpha 0.9, label weight 0.1)
        "distill.options.alpha=0.9", "distill.label_weight=null"])
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    got = {role: weights_hash(tmp_path / "run" / "checkpoints" / f"{role}-best.safetensors") for role in EXPECTED}
    accuracy = {role: m["accuracy"] for role, m in summary["models"].items()}
    assert got == EXPECTED, f"weights differ from the original code's: {got}"
    assert accuracy == EXPECTED_ACCURACY
