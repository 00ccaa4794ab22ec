"""A class-balanced slice of Fashion-MNIST as PNG folders, root/{train,test}/<class>/<n>.png.

    python examples/fashion_mnist_folder.py data/fashion-png --per-class 300

For examples/torchvision_folder.yaml: torchvision networks on a CPU want a few thousand images, not
the 60,000 of the full folder that `make setup` writes (distill.data.fashion_mnist_png, whose class
folder names this uses). The images come from the IDX files (Debian package dataset-fashion-mnist,
or $DISTILL_FASHION_MNIST_DIR); ``--per-class`` keeps the first N of each class (the test split
gets a fifth of that). Any folder in torchvision's ImageFolder layout works the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def write_folder(images: torch.Tensor, labels: torch.Tensor, out: Path, classes: int, per_class: int) -> int:
    """The first ``per_class`` uint8 images (N, H, W) of each class as out/<label>-<name>/<n>.png."""
    from PIL import Image

    from distill.data.fashion_mnist_png import class_folder

    written = 0
    for index in range(classes):
        folder = out / class_folder(index)
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
    train = write_folder(data["train_images"], data["train_labels"], args.out / "train", len(CLASSES),
                         args.per_class)
    test = write_folder(data["test_images"], data["test_labels"], args.out / "test", len(CLASSES),
                        max(1, args.per_class // 5))
    print(f"wrote {train} training and {test} test images under {args.out}")


if __name__ == "__main__":
    main()
