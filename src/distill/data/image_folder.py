"""data.dataset: image_folder -- folders of images in torchvision's ImageFolder layout, held in memory.

``data.images.train`` is ``root/<class>/<image>``; val and test are folders of the same layout or
carved from train (``val_fraction``, ``test_fraction``, ``split_seed``). Images are decoded once
with Pillow (``data/image_files.py``, which a lazy Dataset shares), resized / centre-cropped as
configured, and normalised with the given mean and std or the training split's own. The
unlabelled pool ``data.unlabeled`` is a folder of images at any depth (no class folders needed).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from distill.config.schema import DataConfig, ImageFolderConfig
from distill.data.augment import BatchAugment
from distill.data.bundle import DataBundle, Split
from distill.data.file_splits import labelled_file_splits
from distill.data.image_files import (
    ImageOptions,
    channel_stats,
    class_folders,
    decode_all,
    decode_image,
    image_files,
    is_image,
    normalise,
)
from distill.data.image_stream import lazy_images, streamed_splits
from distill.data.unlabeled import REST, add_unlabeled
from distill.errors import DataError


def image_options(o: ImageFolderConfig) -> ImageOptions:
    size = lambda v: v if v is None or isinstance(v, int) else tuple(v)  # noqa: E731
    return ImageOptions(size(o.resize), size(o.center_crop), o.grayscale)


def unlabeled_files(path: str) -> list[Path]:
    """The image files of an unlabelled pool: one image file, or every image under a folder."""
    p = Path(path)
    if p.is_file():
        files = [p] if is_image(p) else []
    elif p.is_dir():
        files = image_files(p)
    else:
        raise DataError(f"data.unlabeled: {p} is neither a folder nor an image file")
    if not files:
        raise DataError(f"data.unlabeled: {p} holds no images (.png .jpg .jpeg .webp .bmp)")
    return files


def _same_size(decoded: dict[str, torch.Tensor], folder: str) -> None:
    shapes = {name: tuple(x.shape[1:]) for name, x in decoded.items() if len(x)}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s[2]}x{s[1]}" for n, s in shapes.items())
        raise DataError(f"{folder}: the splits' images differ in size ({listed}); set data.images.resize "
                        f"(or center_crop) so that all get one size")


def load_image_folder(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """Your folders of images, root/<class>/<image> (data.images; docs/data.md)."""
    o = cfg.images
    if not o.train:
        raise DataError("data.dataset image_folder needs data.images.train: a folder root/<class>/<image>")
    options = image_options(o)
    list_fn = lambda root, split: class_folders(root, f"data.images.{split}")  # noqa: E731
    parts, classes = labelled_file_splits(o, list_fn, cfg.split_seed, "images")
    if o.mean is not None and (len(o.mean) != options.channels or len(o.std) != options.channels):
        raise DataError(f"data.images.mean/std have {len(o.mean)}/{len(o.std)} values but the images have "
                        f"{options.channels} channel(s) (grayscale: {o.grayscale})")
    if cfg.stream:  # data bigger than memory: files decoded per batch by loader workers (data/image_stream.py)
        lazy, mean, std = streamed_splits(parts, partial(decode_image, options=options), f"image_folder {options}",
                                          o.mean, o.std, o.train)
        splits = {name: Split(inputs, labels) for name, (inputs, labels) in lazy.items()}
        size = splits["train"].inputs.sample_shape
    else:
        decoded = {name: decode_all(files, options) for name, (files, _) in parts.items()}
        _same_size(decoded, o.train)
        mean, std = (list(o.mean), list(o.std)) if o.mean is not None else channel_stats(decoded["train"])
        splits = {name: Split(normalise(decoded[name], mean, std), torch.tensor(labels, dtype=torch.long))
                  for name, (_, labels) in parts.items()}
        size = tuple(decoded["train"].shape[1:])
    augment = None
    if cfg.augment is not None and (cfg.augment.crop_padding > 0 or cfg.augment.hflip):
        # padding for crops takes the value a black pixel maps to (of the first channel)
        augment = BatchAugment(cfg.augment.crop_padding, cfg.augment.hflip, fill=(0.0 - mean[0]) / std[0])
    bundle = DataBundle("image_folder", splits["train"].head(cfg.train_subset), splits["val"],
                        splits["test"].head(cfg.test_subset), len(classes), classes, augment,
                        meta={"images": {"mean": mean, "std": std, "channels": size[0], "size": list(size[1:]),
                                         "files": {name: len(files) for name, (files, _) in parts.items()}}})
    if cfg.unlabeled not in (None, REST):
        files = unlabeled_files(cfg.unlabeled)
        pool = lazy_images(files, options, mean, std) if cfg.stream else decode_all(files, options)
        if tuple(pool.shape[1:]) != size:
            raise DataError(f"data.unlabeled: {cfg.unlabeled} has {pool.shape[3]}x{pool.shape[2]} images but the "
                            f"training images are {size[2]}x{size[1]}; set data.images.resize so both match")
        add_unlabeled(bundle, pool if cfg.stream else normalise(pool, mean, std))
    return bundle
