"""image_folder with ``data.stream: true``: the splits stay files, decoded per batch by loader workers.

Each split is a :class:`LazyInputs` over its files whose decode is the image folder's own
(``image_files.load_image``: Pillow, resize, centre crop, normalise), so a streamed sample is
bit for bit the in-memory one. Without ``data.images.mean``/``std`` the training split's channel
statistics are computed in one pass that decodes a file at a time (nothing is kept); give them to
skip that pass on a large folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from distill.data.image_files import ImageOptions, decode_image, normalise
from distill.data.lazy import LazyInputs, running_channel_stats
from distill.errors import DataError


def streamed_channel_stats(files: Sequence[Path], options: ImageOptions) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) standard deviation on the 0-1 scale, one file in memory at a time."""
    mean, std = running_channel_stats(decode_image(path, options).double().flatten(1) / 255.0 for path in files)
    return mean.tolist(), std.clamp_min(1e-6).tolist()


def lazy_images(files: Sequence[Path], options: ImageOptions, mean: Sequence[float],
                std: Sequence[float]) -> LazyInputs:
    """Files decoded on demand by the image folder's decode and normalisation (``load_image``'s two
    steps: the decode per file, the normalisation once per batch), picklable for loader workers."""
    return LazyInputs([str(f) for f in files], partial(decode_image, options=options),
                      describe=f"image_folder {options} mean {list(mean)} std {list(std)}",
                      finish=partial(normalise, mean=list(mean), std=list(std)))


def streamed_splits(parts: dict[str, tuple[list, list[int]]], options: ImageOptions, mean, std,
                    folder: str) -> tuple[dict[str, tuple[LazyInputs, Tensor]], list[float], list[float]]:
    """({split: (lazy inputs, labels)}, mean, std); the splits' first images must agree in size (every
    other image is checked as it is decoded)."""
    if mean is None:
        mean, std = streamed_channel_stats(parts["train"][0], options)
    out = {name: (lazy_images(files, options, mean, std), torch.tensor(labels, dtype=torch.long))
           for name, (files, labels) in parts.items()}
    shapes = {name: inputs.sample_shape for name, (inputs, _) in out.items() if len(inputs)}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s[2]}x{s[1]}" for n, s in shapes.items())
        raise DataError(f"{folder}: the splits' images differ in size ({listed}); set data.images.resize "
                        f"(or center_crop) so that all get one size")
    return out, list(mean), list(std)
