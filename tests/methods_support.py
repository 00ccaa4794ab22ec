"""Shared fixtures for the method tests: tiny data, tiny zoo models, and NumPy reference helpers."""

from __future__ import annotations

import numpy as np
import torch

from distill.data.bundle import Split, from_tensors
from distill.methods import Batch, Outputs, build_method
from distill.models import build_model

NUM_CLASSES = 4
IMAGE = (1, 16, 16)
# student cnn [8, 16] on 16x16: features.0 -> (8, 16, 16), features.1 -> (16, 8, 8), pool -> (16, 1, 1)
# teacher resnet8 width 0.5:    layer1 -> (8, 16, 16), layer2 -> (16, 8, 8), layer3 -> (32, 4, 4)
LAYER_OPTIONS = {
    "fitnets": {"student_layer": "features.1", "teacher_layer": "layer3"},
    "at": {"student_layer": ["features.0", "features.1"], "teacher_layer": ["layer2", "layer3"]},
    "sp": {"student_layer": "features.1", "teacher_layer": "layer3"},
    "rkd": {}, "pkt": {}, "crd": {"queue_size": 32, "feat_dim": 8},
}
ALL_METHODS = ["dkd", "dist", "lskd", "tfkd", "label_smoothing", "fitnets", "at", "sp", "rkd", "pkt", "crd"]


def tiny_data(n_train: int = 48, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + 16, *IMAGE, generator=g)
    y = torch.randint(0, NUM_CLASSES, (n_train + 16,), generator=g)
    return from_tensors("tiny", Split(x[:n_train], y[:n_train]), Split(x[n_train:], y[n_train:]),
                        num_classes=NUM_CLASSES, val_size=8)


def tiny_models(seed: int = 0):
    torch.manual_seed(seed)
    student = build_model("cnn", IMAGE, NUM_CLASSES, channels=[8, 16])
    teacher = build_model("resnet8", IMAGE, NUM_CLASSES, width=0.5)
    return student, teacher


def fixed(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()


def run(name: str, s_feats: dict, t_feats: dict, options: dict | None = None, targets=None, setup: bool = True):
    """Build a method, set it up on the given features and return (method, losses)."""
    method = build_method(name, options)
    n = len(next(iter(s_feats.values())))
    logits = fixed(n, NUM_CLASSES, seed=7)
    targets = torch.arange(n) % NUM_CLASSES if targets is None else targets
    student, teacher = Outputs(logits, s_feats), Outputs(fixed(n, NUM_CLASSES, seed=8), t_feats)
    if setup:
        method.setup(student, teacher)
    return method, method.losses(student, teacher, Batch(torch.zeros(n, 1), targets))


def np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    p = np_softmax(logits.astype(np.float64))
    return float(np.mean([-np.log(p[i, c]) for i, c in enumerate(targets)]))


def np_kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(sum(pi * np.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0))
