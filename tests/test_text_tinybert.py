"""TinyBERT layer distillation: the loss against a hand computation, and the taps it asks for."""

from __future__ import annotations

import pytest
import torch

from distill.errors import ConfigError
from distill.methods.base import Batch, Outputs, build_method
from distill.methods.tinybert import TinyBERT


def features(widths, heads, seed, layers, n=2, length=5):
    g = torch.Generator().manual_seed(seed)
    out = {f"hidden.{k}": torch.randn(n, length, widths, generator=g) for k in layers}
    out.update({f"attention.{k}": torch.randn(n, heads, length, length, generator=g) for k in layers if k > 0})
    return out


def test_needs_lists_the_mapped_taps():
    needs = TinyBERT(layers=[[0, 0], [1, 3], [2, 6]]).needs()
    assert needs.student_modules == ("hidden.0", "hidden.1", "hidden.2", "attention.1", "attention.2")
    assert needs.teacher_modules == ("hidden.0", "hidden.3", "hidden.6", "attention.3", "attention.6")
    assert TinyBERT(layers=[[1, 2]], attention_weight=0).needs().teacher_modules == ("hidden.2",)


def test_loss_matches_an_independent_computation():
    torch.manual_seed(0)
    pairs = [(0, 0), (1, 2), (2, 4)]
    student = Outputs(torch.randn(2, 3), features(8, 4, 1, [0, 1, 2]))
    teacher = Outputs(torch.randn(2, 3), features(12, 4, 2, [0, 2, 4]))
    method = TinyBERT(layers=pairs, hidden_weight=0.5, attention_weight=2.0, temperature=2.0, alpha=0.3)
    method.setup(student, teacher)
    targets = torch.tensor([2, -1])
    losses = method.losses(student, teacher, Batch(student.logits, targets))

    hidden = 0.0
    for s, t in pairs:
        proj = method.projections[str(s)]
        mapped = student.features[f"hidden.{s}"] @ proj.weight.T + proj.bias
        hidden += ((mapped - teacher.features[f"hidden.{t}"]) ** 2).mean()
    attention = sum(((student.features[f"attention.{s}"] - teacher.features[f"attention.{t}"]) ** 2).mean()
                    for s, t in pairs[1:])
    p_t = (teacher.logits / 2).softmax(-1)
    soft = -(p_t * (student.logits / 2).log_softmax(-1)).sum(-1).mean()  # TinyBERT's soft_cross_entropy, no T^2
    assert torch.allclose(losses["hidden"], 0.5 * hidden, atol=1e-6)
    assert torch.allclose(losses["attention"], 2.0 * attention, atol=1e-6)
    assert torch.allclose(losses["soft"], 0.3 * soft, atol=1e-6)
    assert set(losses) == {"hidden", "attention", "soft"}  # no label term: TinyBERT's label weight is 0
    sum(losses.values()).backward()
    assert method.projections["1"].weight.grad is not None  # the projection is learned


def test_same_width_needs_no_projection_and_heads_may_differ():
    student = Outputs(torch.randn(2, 3), features(8, 2, 1, [1]))
    teacher = Outputs(torch.randn(2, 3), features(8, 4, 2, [3]))
    method = TinyBERT(layers=[[1, 3]])
    method.setup(student, teacher)
    assert len(method.projections) == 0
    losses = method.losses(student, teacher, Batch(student.logits, torch.tensor([0, 1])))
    expected = ((student.features["attention.1"].mean(1) - teacher.features["attention.3"].mean(1)) ** 2).mean()
    assert torch.allclose(losses["attention"], expected, atol=1e-6)
    assert "hard" not in losses and TinyBERT.label_weight == 0.0


def test_layer_pairs_are_validated_through_the_registry():
    assert isinstance(build_method("tinybert", {"layers": [[0, 0], [1, 6]]}), TinyBERT)
    with pytest.raises(ConfigError, match="pairs"):
        build_method("tinybert", {"layers": [1, 2]})
    with pytest.raises(ConfigError, match="non-negative"):
        build_method("tinybert", {"layers": [[-1, 2]]})
