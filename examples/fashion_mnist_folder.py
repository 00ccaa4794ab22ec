"""Write Fashion-MNIST as a folder of PNGs, root/{train,test}/<class>/<n>.png, for examples/torchvision_folder.yaml.

    python examples/fashion_mnist_folder.py data/fashion-png --per-class 300

The images come from the IDX files that `make setup` installs (Debian package dataset-fashion-mnist,
or $DISTILL_FASHION_MNIST_DIR); ``--per-class`` keeps the first N of each class (the test split
gets a fifth of that). Any folder in torchvision's ImageFolder layout works the same way.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch


def class_folder(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)  # "T-shirt/top" -> "T-shirt_top"


def write_folder(images: torch.Tensor, labels: torch.Tensor, out: Path, classes: list[str], per_class: int) -> int:
    """The first ``per_class`` uint8 images (N, H, W) of each class as out/<class>/<n>.png; returns how many."""
    from PIL import Image

    written = 0
    for index, name in enumerate(classes):
        folder = out / class_folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        for n, i in enumerate((labels == index).nonzero().flatten()[:per_class].tolist()):
            Image.fromarray(images[i].numpy(), mode="L").save(folder / f"{n:05d}.png")
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    from distill.data.fashion_mnist import CLASSES, load_fashion_mnist

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (train/ and test/ inside)")
    parser.add_argument("--per-class", type=int, default=300, help="training images per class (test: a fifth)")
    parser.add_argument("--root", help="the IDX files' directory (default: as data.root)")
    args = parser.parse_args(argv)
    data = load_fashion_mnist(args.root)
    train = write_folder(data["train_images"], data["train_labels"], args.out / "train", CLASSES, args.per_class)
    test = write_folder(data["test_images"], data["test_labels"], args.out / "test", CLASSES,
                        max(1, args.per_class // 5))
    print(f"wrote {train} training and {test} test images under {args.out}")


if __name__ == "__main__":
    main()
