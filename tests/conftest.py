import os
from pathlib import Path

import pytest
import torch

from distill.data.fashion_mnist import resolve_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _single_thread():
    # The CI machine has 2 cores and runs other work; one thread is faster and steadier there.
    torch.set_num_threads(1)


@pytest.fixture
def fashion_mnist_root() -> Path:
    root = resolve_root(None)
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed in {root} (make test installs dataset-fashion-mnist)")
    return root


@pytest.fixture
def quick_config() -> Path:
    return ROOT / "examples" / "quick.yaml"


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    # Runs write runs/<name>-<time>/ under the working directory; keep the repo clean.
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def tiny_fashion_mnist(monkeypatch):
    """Fashion-MNIST-shaped random images, so a case loads its data in milliseconds (no dataset needed)."""
    g = torch.Generator().manual_seed(0)
    raw = {"train_images": torch.randint(0, 255, (5200, 28, 28), generator=g, dtype=torch.uint8),
           "train_labels": torch.randint(0, 10, (5200,), generator=g),
           "test_images": torch.randint(0, 255, (64, 28, 28), generator=g, dtype=torch.uint8),
           "test_labels": torch.randint(0, 10, (64,), generator=g)}
    monkeypatch.setattr("distill.data.bundle.load_fashion_mnist", lambda root=None: raw)
    monkeypatch.delenv("DISTILL_DEBUG", raising=False)
