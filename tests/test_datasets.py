"""The dataset registry: built-ins registered once, users register their own from Python."""

import pytest
import torch

from distill.config import load_config
from distill.config.schema import DataConfig
from distill.data import DATASETS, Split, dataset_spec, from_tensors, load_data, register_dataset
from distill.data.registry import is_text_dataset, named_datasets
from distill.errors import ConfigError, DistillError
from distill.pipeline.experiment import run_experiment


def test_builtin_datasets_are_registered_with_their_kind():
    kinds = {name: dataset_spec(name).kind for name in DATASETS}
    assert kinds == {"diabetes": "regression", "fashion_mnist": "image", "sst2": "text", "text_files": "text",
                     "trec": "text", "subj": "text", "mpqa": "text", "spoken_words": "audio", "breast_cancer": "tabular",
                     "wine": "tabular", "digits": "image", "image_folder": "image", "table": "tabular",
                     "hf_dataset": "image", "audio_folder": "audio", "lm_jsonl": "lm", "lm_text": "lm"} | {k: v for k, v in kinds.items() if k.startswith("test_")}
    assert dataset_spec("diabetes").task == "regression"
    assert is_text_dataset("sst2") and not is_text_dataset("fashion_mnist") and not is_text_dataset("nope")
    # text_files needs file names, so `distill evaluate --dataset` cannot take it alone
    assert {"fashion_mnist", "sst2", "trec", "diabetes"} <= set(named_datasets())
    assert "text_files" not in named_datasets()


def test_unknown_dataset_is_a_one_line_error_with_a_hint():
    with pytest.raises(DistillError) as err:
        load_data(DataConfig(dataset="fashoin_mnist"))
    message = str(err.value)
    assert "unknown dataset 'fashoin_mnist'" in message and "did you mean 'fashion_mnist'" in message
    assert "\n" not in message


def test_a_bad_kind_is_refused():
    with pytest.raises(ConfigError, match="kind must be one of"):
        register_dataset("test_bad_kind", kind="audio-ish")


def _blobs(cfg: DataConfig, teacher_path=None):
    g = torch.Generator().manual_seed(cfg.split_seed)
    targets = torch.randint(0, 3, (96,), generator=g)
    inputs = torch.randn(3, 1, 6, 6, generator=g)[targets] + 0.3 * torch.randn(96, 1, 6, 6, generator=g)
    return from_tensors("test_blobs", Split(inputs[:64], targets[:64]), Split(inputs[64:], targets[64:]),
                        num_classes=3, val_size=cfg.val_size)


def test_a_user_dataset_registered_from_python_runs_from_a_config(tmp_path):
    register_dataset("test_blobs", kind="image", summary="test only")(_blobs)
    register_dataset("test_blobs", kind="image", summary="test only")(_blobs)  # same spec again: no error
    cfg = load_config(data={
        "name": "blobs", "data": {"dataset": "test_blobs", "val_size": 16},
        "teacher": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 16}},
        "student": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1, "batch_size": 16}},
        "evaluate": {"latency": False}, "baseline": False, "runtime": {"threads": 1}})
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    assert summary["dataset"] == "test_blobs" and summary["test_samples"] == 32
    assert set(summary["models"]) == {"teacher", "student"}
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("test_blobs", kind="tabular")(_blobs)
