"""Image files -> tensors: one file at a time (Pillow), so an in-memory set and a lazy Dataset share it.

:func:`decode_image` turns one PNG/JPEG/WebP/BMP file into a (C, H, W) uint8 tensor after the
configured resize and centre crop (torchvision's semantics: ``resize: N`` scales the shorter side
to N keeping the aspect ratio, ``resize: [H, W]`` scales to exactly that; ``center_crop`` cuts
the middle). :func:`normalise` maps uint8 to float ``(x / 255 - mean) / std`` per channel.
:func:`load_image` does both (what a lazy ``Dataset.__getitem__`` calls). Every failure is a
:class:`DataError` that names the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from distill.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class ImageOptions:
    resize: int | tuple[int, int] | None = None  # shorter side to N, or exactly (H, W)
    center_crop: int | tuple[int, int] | None = None  # (H, W) cut from the middle
    grayscale: bool = False  # one channel ("L"), else three ("RGB")

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resized_size(width: int, height: int, resize: int | Sequence[int]) -> tuple[int, int]:
    """(width, height) after ``resize`` (torchvision.transforms.Resize: an int scales the shorter side)."""
    if isinstance(resize, int):
        if width <= height:
            return resize, max(1, int(resize * height / width))
        return max(1, int(resize * width / height)), resize
    h, w = _pair(resize)
    return w, h


def decode_image(path: str | os.PathLike, options: ImageOptions = ImageOptions()) -> Tensor:
    """One image file -> (C, H, W) uint8 after resize and centre crop; a bad file is a DataError naming it."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("image files need Pillow: pip install -e '.[data]'") from None

    try:
        with Image.open(path) as image:
            return image_tensor(image, options, path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc}); remove or replace the file") from None


def image_tensor(image, options: ImageOptions, where) -> Tensor:
    """A PIL image -> (C, H, W) uint8 after the mode conversion, resize and centre crop of ``options``."""
    from PIL import Image

    image = image.convert("L" if options.grayscale else "RGB")
    if options.resize is not None:
        image = image.resize(resized_size(*image.size, options.resize), Image.BILINEAR)
    if options.center_crop is not None:
        image = _center_crop(image, _pair(options.center_crop), where)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def stack_same_size(images: Sequence[Tensor], names: Sequence[str]) -> Tensor:
    """(N, C, H, W) of same-sized images; the first of another size is an error naming it and the fix."""
    if not images:
        raise DataError("no images to stack")
    first = images[0]
    for image, name in zip(images, names, strict=True):
        if image.shape != first.shape:
            raise DataError(f"{name}: the image is {image.shape[2]}x{image.shape[1]} pixels but {names[0]} is "
                            f"{first.shape[2]}x{first.shape[1]}; set data.images.resize (e.g. "
                            f"[{first.shape[1]}, {first.shape[2]}]) or center_crop so all images get one size")
    return torch.stack(list(images))


def _center_crop(image, size: tuple[int, int], path):
    h, w = size
    width, height = image.size
    if h > height or w > width:
        raise DataError(f"{path}: the image is {width}x{height} pixels, smaller than center_crop {w}x{h}; "
                        f"set data.images.resize to at least the crop size")
    left, top = round((width - w) / 2), round((height - h) / 2)
    return image.crop((left, top, left + w, top + h))


def normalise(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (..., C, H, W) -> float32 ``(x / 255 - mean) / std`` per channel."""
    shape = (-1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32).reshape(shape)
    s = torch.tensor(std, dtype=torch.float32).reshape(shape)
    return (images.float() / 255.0 - m) / s


def load_image(path: str | os.PathLike, options: ImageOptions, mean: Sequence[float],
               std: Sequence[float]) -> Tensor:
    """One file -> the normalised (C, H, W) float tensor a model reads (a lazy Dataset's item)."""
    return normalise(decode_image(path, options), mean, std)


def channel_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images, on the 0-1 scale."""
    x = images.double() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean.tolist(), std.tolist()


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (any depth), sorted: an unlabelled pool."""
    return sorted(p for p in folder.rglob("*") if is_image(p))


def class_folders(root: str | os.PathLike, option: str = "data.images.train",
                  suffixes: tuple[str, ...] = IMAGE_EXTENSIONS) -> tuple[list[Path], list[int], list[str]]:
    """torchvision's ImageFolder layout: ``root/<class>/<file>``, classes sorted by name.

    Returns (files, class index per file, class names). A missing root, a root without class
    folders and a class folder without files are one-line errors.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{option}: {root} is not a folder; give a folder with one sub-folder per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders; the layout is {root}/<class>/<file> "
                        f"({', '.join(suffixes)})")
    files, labels = [], []
    for index, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
        if not found:
            raise DataError(f"{root / name}: the class folder '{name}' has no files ({', '.join(suffixes)}); "
                            f"add some or remove the folder")
        files += found
        labels += [index] * len(found)
    return files, labels, classes


def decode_all(files: Sequence[Path], options: ImageOptions) -> Tensor:
    """Decode every file into one (N, C, H, W) uint8 tensor; mixed sizes without a resize are an error."""
    if not files:
        return torch.zeros(0, options.channels, 1, 1, dtype=torch.uint8)
    return stack_same_size([decode_image(path, options) for path in files], [str(f) for f in files])
