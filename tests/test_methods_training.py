"""Every method end to end: gradients reach the student and its adapters, never the frozen teacher;
a few training steps through ``distill.api.train_model``; adapters in optimizer and checkpoint;
and the ``distill methods`` listing."""

import math

import pytest
import torch

from distill.api import train_model
from distill.cli import main
from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches
from distill.knowledge.taps import Taps
from distill.knowledge.teacher import LiveTeacher
from distill.methods import Batch, Outputs, build_method
from distill.train.checkpoint import load_tensors
from distill.train.trainer import Trainer

from .methods_support import ALL_METHODS, LAYER_OPTIONS, tiny_data, tiny_models


@pytest.mark.parametrize("name", ALL_METHODS)
def test_gradients_reach_the_student_and_adapters_but_not_the_frozen_teacher(name):
    student, teacher = tiny_models()
    method = build_method(name, LAYER_OPTIONS.get(name))
    needs = method.needs()
    live = LiveTeacher(teacher, needs.teacher_modules) if needs.teacher else None
    x, y = torch.randn(6, 1, 16, 16), torch.arange(6) % 4
    batch = Batch(x, y)
    with Taps(student, needs.student_modules, "student") as taps:
        probe = Outputs(student(x[:2]), taps.pop())
        method.setup(probe, live(Batch(x[:2], y[:2])) if live else None)
        out = Outputs(student(x), taps.pop())
        losses = method.losses(out, live(batch) if live else None, batch)
    if live:
        live.close()
    sum(losses.values()).backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert student.features[0][0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    for p in method.parameters():  # adapters (fitnets regressors, crd heads) learn with the student
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ALL_METHODS)
def test_trains_a_few_steps_through_the_api(name):
    student, teacher = tiny_models()
    result = train_model(student, tiny_data(), teacher=teacher, method=name, method_options=LAYER_OPTIONS.get(name),
                         train={"epochs": 1, "batch_size": 16}, device="cpu")
    [record] = result.history
    assert math.isfinite(record["train_loss"]) and "label" in record["terms"]


def test_crd_memory_bank_trains_through_the_trainer():
    """The official CRD objective gets the training labels (setup_data) and each batch's sample indices."""
    student, teacher = tiny_models()
    data = tiny_data()
    options = {**LAYER_OPTIONS["crd"], "negatives": "memory_bank", "queue_size": 16}
    method = build_method("crd", options)
    live = LiveTeacher(teacher, method.needs().teacher_modules)
    trainer = Trainer("student", student, TrainConfig(epochs=1, batch_size=16), method, teacher=live)
    result = trainer.fit(InMemoryBatches(data.train.inputs, data.train.targets, 16), data.val.inputs, data.val.targets)
    live.close()
    assert math.isfinite(result.history[0]["terms"]["contrastive"])
    assert method.memory_s.shape == (len(data.train.targets), 8) and bool((method.z > 0).all())
    norms = method.memory_t.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # every row seen once, renormalised


@pytest.mark.parametrize("name,param", [("fitnets", "regressors.0.0.weight"), ("crd", "embed_t.weight")])
def test_adapters_are_optimised_and_checkpointed(name, param, tmp_path):
    student, teacher = tiny_models()
    data = tiny_data()
    method = build_method(name, LAYER_OPTIONS[name])
    live = LiveTeacher(teacher, method.needs().teacher_modules)
    cfg = TrainConfig(epochs=1, batch_size=16)
    trainer = Trainer("student", student, cfg, method, teacher=live, checkpoint_dir=tmp_path)
    start = {}
    original_setup = method.setup

    def setup_and_remember(*args):
        original_setup(*args)
        start.update({k: v.clone() for k, v in method.state_dict().items()})

    method.setup = setup_and_remember
    trainer.fit(InMemoryBatches(data.train.inputs, data.train.targets, 16), data.val.inputs, data.val.targets)
    live.close()
    assert not torch.equal(method.state_dict()[param], start[param])
    tensors, _ = load_tensors(tmp_path / "student-last.safetensors")
    assert torch.equal(tensors[f"method.{param}"], method.state_dict()[param])


def test_cli_lists_every_method_and_shows_options(capsys):
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    for name in ALL_METHODS:
        assert name in listing
    assert main(["methods", "crd"]) == 0
    detail = capsys.readouterr().out
    assert "queue_size = 16384" in detail and "Tian" in detail and "label weight" in detail
