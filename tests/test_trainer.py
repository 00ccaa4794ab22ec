import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from distill.api import train_model
from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches, LoaderBatches
from distill.errors import ConfigError, NonFiniteLossError
from distill.knowledge.teacher import LiveTeacher
from distill.methods import Method, Needs, build_method, register_method
from distill.models import build_model
from distill.train.checkpoint import load_tensors
from distill.train.schedule import learning_rate
from distill.train.trainer import Trainer

from .helpers import blobs

TRAIN = TrainConfig(epochs=4, batch_size=32, lr=0.05, warmup_epochs=0.5)


def make_student(seed=0):
    torch.manual_seed(seed)
    return build_model("cnn", (1, 8, 8), 4, channels=[4, 8], dropout=0.2)


def make_teacher(data):
    torch.manual_seed(1)
    teacher = build_model("mlp", (1, 8, 8), 4, hidden=[32])
    train_model(teacher, data, train=TrainConfig(epochs=2, batch_size=32), name="teacher")
    return teacher


def fit_kd(data, teacher, checkpoint_dir, resume=False, callbacks=None):
    student = make_student()
    trainer = Trainer("student", student, TRAIN, build_method("kd"), teacher=LiveTeacher(teacher), seed=5,
                      checkpoint_dir=checkpoint_dir, callbacks=callbacks)
    batches = InMemoryBatches(data.train.inputs, data.train.targets, TRAIN.batch_size, augment=data.augment, seed=5)
    result = trainer.fit(batches, data.val.inputs, data.val.targets, resume=resume)
    return student, result


class Killed(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    data = blobs(augment=True)
    teacher = make_teacher(data)
    full, full_result = fit_kd(data, teacher, tmp_path / "full")

    def kill_after_second_epoch(trainer, record):
        if record["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        fit_kd(data, teacher, tmp_path / "broken", callbacks=[kill_after_second_epoch])
    state = json.loads((tmp_path / "broken" / "student-trainer-state.json").read_text())
    assert state["epoch"] == 2 and not state["finished"]
    resumed, resumed_result = fit_kd(data, teacher, tmp_path / "broken", resume=True)
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert [r["train_loss"] for r in resumed_result.history] == [r["train_loss"] for r in full_result.history]


def test_each_epoch_records_its_steps_and_process_cpu_time():
    data = blobs()
    cfg = TrainConfig(epochs=3, batch_size=32, max_steps=10)
    batches = InMemoryBatches(data.train.inputs, data.train.targets, cfg.batch_size, seed=0)
    per_epoch = len(batches)
    assert per_epoch < 10 < 3 * per_epoch  # the cap falls inside the last epoch
    trainer = Trainer("student", make_student(), cfg, build_method("supervised"))
    history = trainer.fit(batches, data.val.inputs, data.val.targets).history
    assert [r["steps"] for r in history][: 10 // per_epoch] == [per_epoch] * (10 // per_epoch)
    assert sum(r["steps"] for r in history) == 10  # max_steps, counted across epochs
    assert all(r["epoch_cpu_seconds"] > 0 for r in history)


def test_same_seed_same_result_and_seed_matters(tmp_path):
    data = blobs()
    runs = []
    for seed in (0, 0, 1):
        model = make_student(seed)
        train_model(model, data, train=TrainConfig(epochs=1, batch_size=32), seed=seed)
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@register_method("test_explodes")
class Explodes(Method):
    summary = "test only: turns infinite on the third step"
    label_weight = 0.0  # its own term below is the whole loss

    def __init__(self):
        super().__init__()
        self.calls = 0

    def needs(self):
        return Needs(teacher=False)

    def losses(self, student, teacher, batch):
        self.calls += 1
        loss = nn.functional.cross_entropy(student.logits, batch.targets)
        return {"explodes": loss * (math.inf if self.calls > 10 else 1.0)}


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = blobs(n=256)  # 6 steps per epoch: epoch 1 is fine, epoch 2 explodes
    model = make_student()
    with pytest.raises(NonFiniteLossError) as err:
        train_model(model, data, method="test_explodes", train=TrainConfig(epochs=3, batch_size=32),
                    checkpoint_dir=tmp_path)
    message = str(err.value)
    assert "loss became inf at epoch 2" in message and "lower the learning rate" in message
    tensors, meta = load_tensors(tmp_path / "model-last.safetensors")
    assert meta["trainer_state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_a_method_returning_its_own_label_loss_is_refused():
    class OldContract(Method):
        def needs(self):
            return Needs(teacher=False)

        def losses(self, student, teacher, batch):
            return {"hard": nn.functional.cross_entropy(student.logits, batch.targets)}

    data = blobs(n=64)
    with pytest.raises(ConfigError, match="returned its own label loss .*return distillation terms only"):
        Trainer("m", make_student(), TrainConfig(epochs=1, batch_size=32), OldContract()).fit(
            InMemoryBatches(data.train.inputs, data.train.targets, 32), data.val.inputs, data.val.targets)


def test_frozen_teacher_is_untouched_by_distillation():
    data = blobs()
    torch.manual_seed(0)
    teacher = build_model("cnn", (1, 8, 8), 4, channels=[4, 8])
    teacher.train()  # a caller may hand it over in train mode; BatchNorm must still not move
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    train_model(make_student(), data, teacher=teacher, method="kd", train=TrainConfig(epochs=1, batch_size=32))
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training


def test_any_module_and_dataloader_path():
    data = blobs()

    class Tiny(nn.Module):  # a user's own model, not from the zoo
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

        def forward(self, x):
            return self.body(x)

    model = Tiny()
    loader = DataLoader(TensorDataset(data.train.inputs, data.train.targets), batch_size=32, shuffle=True)
    result = train_model(model, data, batches=LoaderBatches(loader), train=TrainConfig(epochs=3, batch_size=32))
    assert len(result.history) == 3
    assert result.best_val_accuracy > 0.6  # blobs are easy; chance is 0.25


def test_learning_rate_schedule():
    cfg = TrainConfig(epochs=10, lr=1.0, warmup_epochs=1, schedule="cosine")
    assert learning_rate(cfg, 0, 10) == pytest.approx(0.1)
    assert learning_rate(cfg, 9, 10) == pytest.approx(1.0)
    assert learning_rate(cfg, 55, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    step = TrainConfig(epochs=10, lr=1.0, schedule="step", step_size=3, gamma=0.5)
    assert learning_rate(step, 35, 10) == pytest.approx(0.5)
    assert learning_rate(step, 65, 10) == pytest.approx(0.25)


def test_teacher_needed():
    with pytest.raises(ValueError, match="needs a teacher"):
        train_model(make_student(), blobs(), method="kd")
