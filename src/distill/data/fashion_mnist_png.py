"""Fashion-MNIST as folders of PNGs (the image_folder layout), written from the IDX files.

``python -m distill.data.fashion_mnist_png OUT`` writes ``OUT/train/<class>/<index>.png`` (60,000)
and ``OUT/test/<class>/<index>.png`` (10,000), class folders named ``<label>-<name>`` so that the
sorted folder order is the label order. It is what ``make setup`` writes for the demo; an existing
complete folder is left as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from distill.data.fashion_mnist import CLASSES, COUNTS, load_fashion_mnist


def class_folder(label: int) -> str:
    return f"{label}-" + re.sub(r"[^A-Za-z0-9]+", "_", CLASSES[label]).strip("_")


def is_complete(out: Path) -> bool:
    marker = out / "COMPLETE"
    return marker.is_file()


def export_png(out: str | Path, root: str | None = None) -> Path:
    """Write the PNG folders (skipped when ``out`` is already complete); returns ``out``."""
    from PIL import Image

    out = Path(out)
    if is_complete(out):
        return out
    raw = load_fashion_mnist(root)
    for split in COUNTS:
        images, labels = raw[f"{split}_images"].numpy(), raw[f"{split}_labels"].tolist()
        for label in range(len(CLASSES)):
            (out / split / class_folder(label)).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image, mode="L").save(out / split / class_folder(label) / f"{i:05d}.png")
    (out / "COMPLETE").write_text("Fashion-MNIST as PNG folders, written by distill.data.fashion_mnist_png\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="the folder to write (train/ and test/ inside)")
    parser.add_argument("--root", help="the IDX files' folder (default: the Debian package's)")
    args = parser.parse_args(argv)
    print(export_png(args.out, args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
