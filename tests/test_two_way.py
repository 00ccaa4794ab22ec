"""Two-way mode: the loss against an independent formula, separate learning rates, and a tiny run
in which both models change and both checkpoints are kept."""

import numpy as np
import pytest
import torch

from distill.errors import ConfigError
from distill.methods import Batch, Outputs, build_method
from distill.models import build_model
from distill.models.cohort import TwoWayPair
from distill.train.checkpoint import load_tensors

from .methods_support import fixed, np_kl, np_softmax
from .test_modes import run


def test_two_way_loss_matches_an_independent_formula():
    t, s = fixed(6, 4, seed=1) * 2, fixed(6, 4, seed=2) * 2
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    T, alpha, rev = 3.0, 0.8, 0.05
    method = build_method("two_way", {"temperature": T, "alpha": alpha, "reverse_weight": rev})
    losses = method.losses(Outputs(torch.stack([t, s], dim=1)), None, Batch(torch.zeros(6, 1), y))
    tn, sn = t.double().numpy(), s.double().numpy()
    kl_ts = np.mean([np_kl(np_softmax(tn[i] / T), np_softmax(sn[i] / T)) for i in range(6)]) * T**2
    kl_st = np.mean([np_kl(np_softmax(sn[i] / T), np_softmax(tn[i] / T)) for i in range(6)]) * T**2
    assert set(losses) == {"student.soft", "teacher.reverse"}  # distillation terms only: the trainer adds labels
    assert losses["student.soft"].item() == pytest.approx(alpha * kl_ts, rel=1e-5)
    assert losses["teacher.reverse"].item() == pytest.approx(rev * kl_st, rel=1e-5)
    assert method.label_weight == pytest.approx(0.1)


def test_each_direction_only_moves_its_own_model():
    torch.manual_seed(0)
    teacher, student = build_model("mlp", (1, 4, 4), 3, hidden=[8]), build_model("mlp", (1, 4, 4), 3, hidden=[4])
    pair = TwoWayPair(teacher, student)
    x, y = torch.randn(5, 1, 4, 4), torch.arange(5) % 3
    losses = build_method("two_way").losses(Outputs(pair(x)), None, Batch(x, y))
    losses["teacher.reverse"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in student.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in teacher.parameters())


def test_two_way_run_updates_both_models_keeps_both_checkpoints_and_uses_the_teacher_lr(tmp_path):
    seen_lrs = []

    def record_lrs(trainer, record):
        if trainer.name == "two_way":
            seen_lrs.append([g["lr"] for g in trainer.optimizer.param_groups])

    summary, ckpt = run(tmp_path, {"mode": "two_way", "method": "two_way", "teacher_lr": 0.01,
                                   "options": {"reverse_weight": 0.5}},
                        callbacks=[record_lrs], student={"model": {"name": "mlp", "hidden": [8]},
                                                         "train": {"epochs": 2, "batch_size": 64, "lr": 0.05,
                                                                   "schedule": "constant"}})
    assert set(summary["models"]) == {"teacher", "baseline", "student", "teacher_two_way"}
    pretrained, _ = load_tensors(ckpt / "teacher-best.safetensors")
    after, meta = load_tensors(ckpt / "teacher_two_way-best.safetensors")
    student, _ = load_tensors(ckpt / "student-best.safetensors")
    baseline, _ = load_tensors(ckpt / "baseline-best.safetensors")
    assert pretrained.keys() == after.keys() and meta["model"]["name"] == "mlp"
    assert any(not torch.equal(pretrained[k], after[k]) for k in pretrained)  # the teacher kept learning
    assert any(not torch.equal(student[k], baseline[k]) for k in student)  # same init, different training
    assert seen_lrs and all(lrs[:2] == pytest.approx([0.01, 0.05]) for lrs in seen_lrs)


def test_two_way_refuses_another_method(tmp_path):
    with pytest.raises(ConfigError, match="method 'two_way'"):
        run(tmp_path, {"mode": "two_way", "method": "kd"})


def test_teacher_lr_belongs_to_two_way_only():
    from distill.config import load_config

    with pytest.raises(ConfigError, match="teacher_lr"):
        load_config(data={"distill": {"method": "kd", "teacher_lr": 0.01}})
