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
