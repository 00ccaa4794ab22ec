"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from the four IDX files on disk."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from distill.data.idx import read_idx
from distill.errors import DataError

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
ROOT_ENV = "DISTILL_FASHION_MNIST_DIR"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
COUNTS = {"train": 60000, "test": 10000}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
HOW_TO_GET = (
    f"install it with 'apt-get install dataset-fashion-mnist' (files land in {DEFAULT_ROOT}), "
    f"or point data.root or ${ROOT_ENV} at a directory holding the four IDX files"
)


def resolve_root(root: str | os.PathLike | None) -> Path:
    return Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"Fashion-MNIST file {stem}.gz not found in {root}; {HOW_TO_GET}")


def load_fashion_mnist(root: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Return uint8 tensors: train_images (60000,28,28), train_labels (60000,), test_* (10000,...)."""
    root = resolve_root(root)
    if not root.is_dir():
        raise DataError(f"Fashion-MNIST directory {root} does not exist; {HOW_TO_GET}")
    out = {}
    for key, stem in FILES.items():
        path = _find(root, stem)
        tensor = read_idx(path, expected_ndim=3 if key.endswith("images") else 1)
        split = key.split("_")[0]
        if tensor.shape[0] != COUNTS[split]:
            raise DataError(f"{path} holds {tensor.shape[0]} items, Fashion-MNIST {split} has {COUNTS[split]}; {HOW_TO_GET}")
        if key.endswith("images") and tuple(tensor.shape[1:]) != (28, 28):
            raise DataError(f"{path} holds images of shape {tuple(tensor.shape[1:])}, expected (28, 28)")
        if key.endswith("labels") and int(tensor.max()) >= len(CLASSES):
            raise DataError(f"{path} has label {int(tensor.max())}; Fashion-MNIST labels are 0..9")
        out[key] = tensor
    return out
