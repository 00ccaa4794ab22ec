"""The Python API: cache=, callbacks=, batches=, device=, the teacher cache, numpy data, dict DataLoaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import distill
from distill.data.batches import LoaderBatches
from distill.data.bundle import from_tensors
from distill.errors import ConfigError, DataError
from tests.helpers import blobs


def flat_net(width: int = 16, classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, classes))


def counting(model: nn.Module) -> list[int]:
    calls = [0]
    model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


TRAIN = {"epochs": 2, "batch_size": 32, "lr": 0.05}


def test_from_tensors_takes_numpy_pairs():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 1, 8, 8)), rng.integers(0, 3, size=80)
    data = from_tensors("np", (x, y), (x[:20], y[:20]), val_size=16)
    assert data.train.inputs.dtype == torch.float32 and data.train.targets.dtype == torch.int64
    assert data.num_classes == 3 and len(data.train) == 64 and len(data.test) == 20
    with pytest.raises(DataError, match="80 inputs but 79 targets"):
        from_tensors("np", (x, y[:79]), (x, y), val_size=8)


def test_distill_model_callbacks_device_and_cache_on():
    data = blobs(n=256)
    teacher = flat_net(32)
    distill.train_model(teacher, data, train=TRAIN, device="cpu")
    calls = counting(teacher)
    records = []
    result = distill.distill_model(teacher, flat_net(8), data, train=TRAIN, device="cpu", cache="on",
                                   callbacks=[lambda trainer, record: records.append(record)], temperature=2.0)
    assert [r["epoch"] for r in records] == [1, 2] and "soft" in records[0]["terms"]
    # cached: the teacher ran once over the 192 training samples (1 chunk of 256) plus 2 small probes,
    # not once per batch of every epoch (2 epochs x 6 batches)
    assert calls[0] == 3
    assert result.best_epoch in (1, 2)
    calls[0] = 0
    distill.distill_model(teacher, flat_net(8), data, train=TRAIN, device="cpu")  # default: live teacher
    assert calls[0] == 1 + 2 * 6


def test_one_cache_serves_several_students(tmp_path):
    data = blobs(n=256)
    teacher = flat_net(32)
    cached = distill.cache_teacher(teacher, data, cache={"dir": str(tmp_path / "cache")}, epochs=2)
    calls = counting(teacher)
    for width in (4, 8):
        distill.distill_model(cached, flat_net(width), data, train=TRAIN)
    assert calls[0] == 2 and (tmp_path / "cache").is_dir()  # one shape probe per student, no training passes


def test_cache_options_are_checked_like_the_yaml():
    data = blobs(n=64)
    with pytest.raises(ConfigError, match="cache: 'views'"):
        distill.distill_model(flat_net(), flat_net(), data, train=TRAIN, cache={"mode": "on", "views": 0})


class DictSet(Dataset):
    def __init__(self, data):
        self.x, self.y = data.train.inputs, data.train.targets

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"pixel_values": self.x[i], "labels": self.y[i], "my_x": self.x[i], "my_y": self.y[i]}


def test_loader_batches_read_dict_batches():
    data = blobs(n=128)
    loader = DataLoader(DictSet(data), batch_size=32)
    auto = next(LoaderBatches(loader).epoch(0))
    named = next(LoaderBatches(loader, input_key="my_x", label_key="my_y").epoch(0))
    assert torch.equal(auto.inputs, named.inputs) and torch.equal(auto.targets, data.train.targets[:32])
    with pytest.raises(DataError, match="no key 'pixels'.*input_key"):
        next(LoaderBatches(loader, input_key="pixels").epoch(0))
    result = distill.train_model(flat_net(), data, train=TRAIN, batches=LoaderBatches(loader))
    assert len(result.history) == 2
