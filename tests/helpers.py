"""Small synthetic data for fast tests."""

import os
from pathlib import Path

import torch

from distill.data.augment import BatchAugment
from distill.data.bundle import Split, from_tensors


def blobs(n: int = 256, classes: int = 4, shape=(1, 8, 8), seed: int = 0, augment: bool = False):
    """Class-dependent Gaussian images: learnable in a few steps, so loss curves mean something."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, classes, (n,), generator=g)
    centers = torch.randn(classes, *shape, generator=g)
    inputs = centers[targets] + 0.5 * torch.randn(n, *shape, generator=g)
    test_t = torch.randint(0, classes, (n // 4,), generator=g)
    test = Split(centers[test_t] + 0.5 * torch.randn(n // 4, *shape, generator=g), test_t)
    return from_tensors("blobs", Split(inputs, targets), test, num_classes=classes, val_size=n // 4,
                        augment=BatchAugment(1, True) if augment else None)


def subprocess_env() -> dict[str, str]:
    """The environment for a `python -m distill` child: this checkout's sources first, one thread."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
