"""Soft decision tree (Frosst and Hinton 2017, "Distilling a Neural Network Into a Soft Decision Tree").

A complete binary tree of ``depth`` levels of inner nodes. Inner node i holds a learned filter
w_i and bias b_i and sends a sample right with probability p_i(x) = sigmoid(beta (x . w_i + b_i)).
A leaf holds a learned distribution Q = softmax(phi) over the classes; the probability of
reaching a node is the product of the branch probabilities on its path. Nodes are numbered
breadth-first (node i has children 2i+1, left, and 2i+2, right); the leaves are the last
2^depth nodes.

The submodules ``gates`` (branch probabilities, (N, inner)), ``routing`` (reach probability of
every node, (N, nodes)) and ``leaves`` (log Q, (leaves, C)) are hooked by method ``soft_tree``,
which trains the tree with the paper's loss. ``forward`` returns log-probabilities used as logits:
in training the mixture log sum_l P_l(x) Q_l; in evaluation the paper's prediction, log Q of the
leaf with the greatest path probability (``inference: mixture`` keeps the mixture).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from distill.models.registry import register_model
from distill.options import Positive


class Gates(nn.Module):
    """p_i(x) = sigmoid(beta (x . w_i + b_i)) for every inner node i."""

    def __init__(self, features: int, inner: int, beta: float):
        super().__init__()
        self.filters = nn.Linear(features, inner)
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.beta * self.filters(x))


class Routing(nn.Module):
    """Reach probability of every node (breadth-first) from the inner nodes' right-branch probabilities."""

    def __init__(self, depth: int):
        super().__init__()
        self.depth = depth

    def forward(self, right: Tensor) -> Tensor:
        reach = [right.new_ones(len(right), 1)]
        level = reach[0]
        for d in range(self.depth):
            p = right[:, 2**d - 1: 2 ** (d + 1) - 1]  # this level's inner nodes, left to right
            level = torch.stack([level * (1 - p), level * p], dim=2).flatten(1)  # children: left, right
            reach.append(level)
        return torch.cat(reach, dim=1)


class Leaves(nn.Module):
    def __init__(self, leaves: int, classes: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(leaves, classes))
        nn.init.normal_(self.logits, std=0.01)

    def forward(self) -> Tensor:
        return torch.log_softmax(self.logits, dim=-1)


class SoftDecisionTree(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int, beta: float, inference: str):
        super().__init__()
        if depth < 1:
            raise ValueError(f"soft_tree depth must be >= 1, got {depth}")
        if inference not in ("max_path", "mixture"):
            raise ValueError(f"soft_tree inference must be max_path or mixture, got '{inference}'")
        self.input_shape, self.depth, self.inference = tuple(input_shape), depth, inference
        self.inner, self.n_leaves = 2**depth - 1, 2**depth
        self.gates = Gates(math.prod(input_shape), self.inner, beta)
        self.routing = Routing(depth)
        self.leaves = Leaves(self.n_leaves, num_classes)

    def node_depths(self) -> list[int]:
        return [int(math.log2(i + 1)) for i in range(self.inner)]

    def forward(self, x: Tensor) -> Tensor:
        reach = self.routing(self.gates(x.flatten(1)))
        leaf_p = reach[:, self.inner:]
        log_q = self.leaves()
        if self.training or self.inference == "mixture":
            return torch.logsumexp(torch.log(leaf_p.clamp_min(1e-12))[:, :, None] + log_q[None], dim=1)
        return log_q[leaf_p.argmax(dim=1)]

    @torch.no_grad()
    def paths(self, x: Tensor) -> list[list[tuple[int, float]]]:
        """For each sample, the greedy path from the root: (node, probability of the branch taken)."""
        right = self.gates(x.flatten(1))
        out = []
        for row in right:
            node, path = 0, []
            while node < self.inner:
                p = float(row[node])
                path.append((node, p if p >= 0.5 else 1 - p))
                node = 2 * node + (2 if p >= 0.5 else 1)
            path.append((node, 1.0))
            out.append(path)
        return out


@register_model("soft_tree")
def soft_tree(input_shape: tuple[int, ...], num_classes: int,
              depth: Annotated[int, Field(ge=1, le=16, description="levels of inner nodes (2**depth leaves)")] = 4,
              beta: Positive = 1.0, inference: Literal["max_path", "mixture"] = "max_path") -> nn.Module:
    """Soft decision tree (Frosst and Hinton 2017): train it with method soft_tree."""
    return SoftDecisionTree(input_shape, num_classes, depth, beta, inference)
