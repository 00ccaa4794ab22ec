"""image_folder with ``data.stream: true``: the splits stay files, decoded per batch by loader workers.

Each split is a :class:`LazyInputs` over its files whose decode is the image folder's own
(``image_files.load_image``: Pillow, resize, centre crop, normalise), so a streamed sample is
bit for bit the in-memory one. Without ``data.images.mean``/``std`` the training split's channel
statistics are computed in one pass that decodes a file at a time (nothing is kept); give them to
skip that pass on a large folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from distill.data.image_files import ImageOptions, decode_image, normalise
from distill.data.lazy import Decode, LazyInputs, running_channel_stats
from distill.errors import DataError


def streamed_channel_stats(paths: Sequence, decode: Decode) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) standard deviation on the 0-1 scale, one image in memory at a time."""
    mean, std = running_channel_stats(decode(str(path)).double().flatten(1) / 255.0 for path in paths)
    return mean.tolist(), std.clamp_min(1e-6).tolist()


def lazy_decoded(paths: Sequence, decode: Decode, describe: str, mean: Sequence[float], std: Sequence[float],
                 source_of: Callable[[str], str] | None = None) -> LazyInputs:
    """Rows decoded on demand to uint8 images by ``decode`` (picklable, for loader workers) and normalised
    once per batch; ``describe`` names the decode and its options (part of the cache key)."""
    return LazyInputs([str(p) for p in paths], decode, describe=f"{describe} mean {list(mean)} std {list(std)}",
                      finish=partial(normalise, mean=list(mean), std=list(std)), source_of=source_of)


def lazy_images(files: Sequence[Path], options: ImageOptions, mean: Sequence[float],
                std: Sequence[float]) -> LazyInputs:
    """Image files decoded by the image folder's decode and normalisation (``load_image``'s two steps:
    the decode per file, the normalisation once per batch)."""
    return lazy_decoded(files, partial(decode_image, options=options), f"image_folder {options}", mean, std)


def streamed_splits(parts: dict[str, tuple[list, list[int]]], decode: Decode, describe: str, mean, std,
                    where: str, source_of: Callable[[str], str] | None = None
                    ) -> tuple[dict[str, tuple[LazyInputs, Tensor]], list[float], list[float]]:
    """({split: (lazy inputs, labels)}, mean, std); the splits' first images must agree in size (every
    other image is checked as it is decoded)."""
    if mean is None:
        mean, std = streamed_channel_stats(parts["train"][0], decode)
    out = {name: (lazy_decoded(paths, decode, describe, mean, std, source_of), torch.tensor(labels, dtype=torch.long))
           for name, (paths, labels) in parts.items()}
    shapes = {name: inputs.sample_shape for name, (inputs, _) in out.items() if len(inputs)}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s[2]}x{s[1]}" for n, s in shapes.items())
        raise DataError(f"{where}: the splits' images differ in size ({listed}); set data.images.resize "
                        f"(or center_crop) so that all get one size")
    return out, list(mean), list(std)
