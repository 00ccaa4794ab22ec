"""The training loop keeps its loss totals on the device: host syncs do not grow with the number of
steps, and the NaN guard still stops within one log interval, keeping the last good checkpoint."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from distill.checkpoint import load_tensors
from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches
from distill.errors import NonFiniteLossError
from distill.knowledge.teacher import LiveTeacher
from distill.methods import Method, Needs, build_method, register_method
from distill.models import build_model
from distill.train.trainer import Trainer, TrainStep

from .helpers import blobs


@register_method("test_sync_counter")
class CountsSteps(Method):
    summary = "test only: a cross-entropy term that turns infinite from step `explode_at` on"
    label_weight = 0.0  # the trainer adds no label term of its own: the counts below are this method's

    def __init__(self, explode_at: int = 10**9):
        super().__init__()
        self.explode_at, self.calls = explode_at, 0

    def needs(self):
        return Needs(teacher=False)

    def losses(self, student, teacher, batch):
        self.calls += 1
        scale = torch.inf if self.calls >= self.explode_at else 1.0
        return {"ce": F.cross_entropy(student.logits, batch.targets) * scale,
                "zero": student.logits.pow(2).mean() * 0.0}


def fit(batch_size: int, epochs: int = 1, log_every: int = 1000, method=None, checkpoint_dir=None):
    data = blobs(n=256)  # 192 training samples
    torch.manual_seed(0)
    model = build_model("cnn", (1, 8, 8), 4, channels=[4, 8])
    method = method or CountsSteps()
    trainer = Trainer("model", model, TrainConfig(epochs=epochs, batch_size=batch_size), method,
                      checkpoint_dir=checkpoint_dir, log_every=log_every)
    batches = InMemoryBatches(data.train.inputs, data.train.targets, batch_size, shuffle=True, seed=0)
    return trainer, trainer.fit(batches, data.val.inputs, data.val.targets)


def count_host_syncs(monkeypatch, run) -> int:
    """Calls that copy a tensor's value to the host (each one waits for the device)."""
    count = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            count["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    run()
    monkeypatch.undo()
    return count["n"]


def test_host_syncs_do_not_grow_with_the_number_of_steps(monkeypatch):
    six_steps = count_host_syncs(monkeypatch, lambda: fit(batch_size=32))
    twelve_steps = count_host_syncs(monkeypatch, lambda: fit(batch_size=16))
    assert six_steps == twelve_steps  # validation and bookkeeping only, not per step
    with_interval = count_host_syncs(monkeypatch, lambda: fit(batch_size=16, log_every=4))
    assert with_interval == twelve_steps + 3  # one more sync per log interval (12 steps / 4)


def test_running_totals_equal_the_per_step_sums():
    trainer, result = fit(batch_size=32, epochs=1)
    [record] = result.history
    assert set(record["terms"]) == {"ce", "zero"} and record["terms"]["zero"] == 0.0
    assert record["train_loss"] == pytest.approx(record["terms"]["ce"])


@pytest.mark.parametrize("log_every", [1, 4])
def test_nan_guard_stops_within_one_log_interval_and_keeps_the_last_good_checkpoint(tmp_path, log_every):
    method = CountsSteps(explode_at=8)  # 6 steps per epoch: epoch 2, step 8 overall
    with pytest.raises(NonFiniteLossError) as err:
        fit(batch_size=32, epochs=3, log_every=log_every, method=method, checkpoint_dir=tmp_path)
    message = str(err.value)
    assert "loss became inf at epoch 2, step 8" in message and "ce=inf" in message
    assert "lower the learning rate" in message and "\n" not in message
    assert 8 <= method.calls < 8 + log_every  # stopped at the first sync after the bad step
    tensors, meta = load_tensors(tmp_path / "model-last.safetensors")
    assert meta["trainer_state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_student_and_method_adapters_are_one_module_for_ddp():
    data = blobs(n=64)
    torch.manual_seed(0)
    student, teacher = build_model("cnn", (1, 8, 8), 4, channels=[4, 8]), build_model("cnn", (1, 8, 8), 4)
    method = build_method("fitnets", {"student_layer": "features.0", "teacher_layer": "features.1"})
    live = LiveTeacher(teacher, method.needs().teacher_modules)
    trainer = Trainer("s", student, TrainConfig(epochs=1, batch_size=16), method, teacher=live)
    trainer.fit(InMemoryBatches(data.train.inputs, data.train.targets, 16, seed=0), data.val.inputs, data.val.targets)
    step = trainer.step_module
    assert isinstance(step, TrainStep)  # single process: not wrapped, the very same module
    names = {n for n, _ in step.named_parameters()}
    assert any(n.startswith("model.") for n in names) and any(n.startswith("method.regressors") for n in names)
    assert len(names) == len(list(student.parameters())) + len(list(method.parameters()))
    assert isinstance(step, nn.Module)
