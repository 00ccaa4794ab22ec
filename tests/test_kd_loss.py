import math

import numpy as np
import pytest
import torch

from distill.config.schema import TrainConfig
from distill.methods import Batch, Outputs, build_method
from distill.methods.base import kl_with_temperature
from distill.train.label_loss import label_loss
from distill.train.trainer import Trainer


def reference_kd(student, teacher, targets, T, alpha, beta):
    """Hinton KD written out with numpy loops: alpha * T^2 * mean_i KL(p_t || p_s) + beta * CE."""
    s, t = np.asarray(student, dtype=np.float64), np.asarray(teacher, dtype=np.float64)
    soft = 0.0
    hard = 0.0
    for i in range(s.shape[0]):
        ps = np.exp(s[i] / T) / np.exp(s[i] / T).sum()
        pt = np.exp(t[i] / T) / np.exp(t[i] / T).sum()
        soft += sum(pt[k] * (math.log(pt[k]) - math.log(ps[k])) for k in range(s.shape[1]))
        p = np.exp(s[i]) / np.exp(s[i]).sum()
        hard += -math.log(p[targets[i]])
    n = s.shape[0]
    return alpha * soft / n * T * T, beta * hard / n


STUDENT = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
TEACHER = [[2.0, 1.0, 0.0], [0.5, 0.5, 2.5]]
TARGETS = [1, 2]


@pytest.mark.parametrize("T,alpha,beta", [(1.0, 0.5, 0.5), (4.0, 0.9, 0.1), (2.5, 1.0, 0.0)])
def test_kd_matches_reference(T, alpha, beta):
    """The method's soft term and, through the trainer, its label term; an old config's beta is the label weight."""
    method = build_method("kd", {"temperature": T, "alpha": alpha, "beta": beta})
    losses = method.losses(Outputs(torch.tensor(STUDENT)), Outputs(torch.tensor(TEACHER)),
                           Batch(torch.zeros(2), torch.tensor(TARGETS)))
    soft, hard = reference_kd(STUDENT, TEACHER, TARGETS, T, alpha, beta)
    assert set(losses) == {"soft"}
    assert float(losses["soft"]) == pytest.approx(soft, rel=1e-5)
    label = method.label_weight * label_loss(torch.tensor(STUDENT), torch.tensor(TARGETS))
    assert float(label) == pytest.approx(hard, rel=1e-5, abs=1e-12)


def test_kd_default_total_is_unchanged():
    """alpha 0.9 * soft (T 4) + label weight 0.1 * CE, the numbers distill has always used (the demo's)."""
    method = build_method("kd")
    soft, hard = reference_kd(STUDENT, TEACHER, TARGETS, 4.0, 0.9, 0.1)
    trainer = Trainer("student", torch.nn.Identity(), TrainConfig(), method, teacher=lambda b: Outputs(b.inputs * 0 +
                                                                                                torch.tensor(TEACHER)))
    losses = trainer._step(Batch(torch.tensor(STUDENT), torch.tensor(TARGETS)))
    assert set(losses) == {"label", "soft"}
    assert float(losses["soft"]) == pytest.approx(soft, rel=1e-5)
    assert float(losses["label"]) == pytest.approx(hard, rel=1e-5)


def test_hand_computed_two_class_value():
    # T=1, teacher probs (0.5, 0.5), student logits (0, ln 3) -> probs (0.25, 0.75):
    # KL = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3)
    value = kl_with_temperature(torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.0, 0.0]]), 1.0)
    assert float(value) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)


def test_identical_logits_give_zero_soft_loss():
    logits = torch.randn(5, 7)
    assert float(kl_with_temperature(logits, logits.clone(), 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_gradient_reaches_student_only():
    teacher_net = torch.nn.Linear(4, 3)
    student_net = torch.nn.Linear(4, 3)
    for p in teacher_net.parameters():
        p.requires_grad_(False)
    x = torch.randn(6, 4)
    with torch.inference_mode():
        t_logits = teacher_net(x)
    method = build_method("kd")
    losses = method.losses(Outputs(student_net(x)), Outputs(t_logits.clone()),
                           Batch(x, torch.randint(0, 3, (6,))))
    sum(losses.values()).backward()
    assert student_net.weight.grad is not None and student_net.weight.grad.abs().sum() > 0
    assert teacher_net.weight.grad is None


def test_bad_options_are_clear():
    from distill.errors import ConfigError

    with pytest.raises(ConfigError, match="method 'kd' has no option 'temprature' \\(did you mean 'temperature'\\?\\)"):
        build_method("kd", {"temprature": 2})
    with pytest.raises(ValueError, match="'temperature': input should be greater than 0"):  # declared in the signature
        build_method("kd", {"temperature": 0})
