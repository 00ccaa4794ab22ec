"""Fast paths of the training step: bf16 autocast on CPU and torch.compile of the student."""

from __future__ import annotations

import math

import pytest
import torch

from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches
from distill.methods.base import build_method
from distill.models.registry import build_model
from distill.train import fast
from distill.train import trainer as trainer_module
from distill.train.trainer import Trainer


def tiny_fit(**kwargs):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=g), torch.randint(0, 4, (64,), generator=g)
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 4, hidden=[16])
    tr = Trainer("s", model, TrainConfig(epochs=2, batch_size=16, lr=0.1), build_method("supervised"), **kwargs)
    result = tr.fit(InMemoryBatches(x, y, 16), x[:16], y[:16])
    return tr, [r["train_loss"] for r in result.history]


def test_bf16_autocast_runs_the_forward_in_bfloat16_on_cpu():
    with fast.autocast(torch.device("cpu"), "bf16"):
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    with fast.autocast(torch.device("cpu"), "fp32"):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32
    with pytest.raises(ValueError, match="bf16 on CPU"):
        fast.autocast(torch.device("cpu"), "fp16")


def test_bf16_training_follows_fp32_closely():
    _, fp32 = tiny_fit()
    _, bf16 = tiny_fit(precision="bf16")
    assert all(math.isfinite(v) for v in bf16)
    assert bf16 != fp32  # autocast really changed the arithmetic
    assert bf16 == pytest.approx(fp32, rel=0.05)


def test_compiled_student_trains_and_keeps_plain_checkpoint_names(monkeypatch):
    # The eager backend exercises torch.compile's graph capture without minutes of C++ compilation.
    monkeypatch.setattr(trainer_module, "compiled", lambda f, on: fast.compiled(f, on, backend="eager"))
    tr, losses = tiny_fit(compile=True)
    _, plain = tiny_fit()
    assert tr.forward is not tr.model
    assert not any(k.startswith("_orig_mod") for k in tr.model.state_dict())
    assert losses == pytest.approx(plain, rel=1e-5)
    assert fast.compiled(tr.model, False) is tr.model
