"""Soft decision tree: routing probabilities, the loss against a hand computation, a tiny run."""

import math

import pytest
import torch

from distill.knowledge.taps import Taps
from distill.methods import Batch, Outputs, build_method
from distill.models import build_model
from distill.models.soft_tree import SoftDecisionTree

from .test_modes import run


def hooked(tree, x):
    with Taps(tree, ("gates", "routing", "leaves")) as taps:
        logits = tree(x)
        return Outputs(logits, taps.pop())


def test_routing_probabilities_of_the_leaves_sum_to_one_at_every_level():
    torch.manual_seed(0)
    tree = build_model("soft_tree", (1, 4, 4), 3, depth=4)
    reach = tree.routing(tree.gates(torch.randn(7, 16)))
    assert reach.shape == (7, 2**5 - 1)
    for d in range(5):
        level = reach[:, 2**d - 1: 2 ** (d + 1) - 1]
        assert torch.allclose(level.sum(1), torch.ones(7), atol=1e-6)
    # each child's reach is its parent's times the branch probability
    right = tree.gates(torch.randn(3, 16))
    reach = tree.routing(right)
    for i in range(tree.inner):
        assert torch.allclose(reach[:, 2 * i + 2], reach[:, i] * right[:, i], atol=1e-6)
        assert torch.allclose(reach[:, 2 * i + 1], reach[:, i] * (1 - right[:, i]), atol=1e-6)


def test_loss_against_a_hand_computed_value():
    # depth 1: one inner node, two leaves, two features, two classes; every number set by hand.
    tree = SoftDecisionTree((2,), 2, depth=1, beta=1.0, inference="max_path")
    with torch.no_grad():
        tree.gates.filters.weight.copy_(torch.tensor([[1.0, -1.0]]))
        tree.gates.filters.bias.zero_()
        tree.leaves.logits.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # soft targets at T=2: softmax([0.5, 0]) and [0.5, 0.5]
    T, strength = 2.0, 0.3
    method = build_method("soft_tree", {"temperature": T, "penalty": strength})
    losses = method.losses(hooked(tree, x), Outputs(teacher), Batch(x, torch.tensor([0, 1])))

    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    right = [sig(1.0), sig(-2.0)]  # x . w
    log_q = [[2 - math.log(math.exp(2) + 1), -math.log(math.exp(2) + 1)],
             [-math.log(1 + math.e), 1 - math.log(1 + math.e)]]
    targets = [[math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)], [0.5, 0.5]]
    per_sample = []
    for n in range(2):
        leaf_p = [1 - right[n], right[n]]
        per_sample.append(-sum(leaf_p[leaf] * sum(targets[n][k] * log_q[leaf][k] for k in range(2))
                               for leaf in range(2)))
    assert losses["soft"].item() == pytest.approx(sum(per_sample) / 2, rel=1e-5)
    share = (right[0] + right[1]) / 2  # reach of the root is 1 for both samples
    assert losses["penalty"].item() == pytest.approx(-strength * 0.5 * (math.log(share) + math.log(1 - share)),
                                                     rel=1e-5)


def test_prediction_is_the_most_probable_leaf_and_paths_follow_the_gates():
    torch.manual_seed(1)
    tree = build_model("soft_tree", (6,), 4, depth=3).eval()
    x = torch.randn(5, 6)
    with torch.no_grad():
        out = hooked(tree, x)
    leaf = out.features["routing"][:, tree.inner:].argmax(1)
    assert torch.equal(out.logits, out.features["leaves"][leaf])
    for n, path in enumerate(tree.paths(x)):
        assert len(path) == 4 and path[0][0] == 0 and all(p >= 0.5 for _, p in path)
        reach = out.features["routing"][n, path[-1][0]]  # the greedy path's leaf: product of the branches taken
        assert math.prod(p for _, p in path) == pytest.approx(float(reach), rel=1e-5)
    tree.train()
    mixture = tree(x).exp().sum(1)
    assert torch.allclose(mixture, torch.ones(5), atol=1e-5)


def test_a_soft_tree_student_trains_from_soft_targets(tmp_path):
    summary, ckpt = run(tmp_path, {"method": "soft_tree", "options": {"penalty": 0.05}},
                        student={"model": {"name": "soft_tree", "depth": 3},
                                 "train": {"epochs": 2, "batch_size": 64, "optimizer": "adamw", "lr": 0.01}})
    assert (ckpt / "student-best.safetensors").is_file()
    assert summary["models"]["student"]["accuracy"] > 0.2  # 10 classes (chance 0.1), 256 images, 2 epochs
