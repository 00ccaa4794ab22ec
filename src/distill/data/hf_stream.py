"""hf_dataset with ``data.stream: true``: image rows stay in the dataset's Arrow files, decoded per batch.

A row is addressed as ``<dataset path>::<split>::<row>``; :class:`HFImageRow` (picklable, for loader
workers) opens the dataset once per process (``load_from_disk`` memory-maps it) and decodes that
row's image with the in-memory path's own steps (``hf_dataset.pil_images``: PIL or array, mode,
resize, centre crop), so a streamed sample is the in-memory one. The label column is read whole
(it is small); the image column never is. The teacher cache keys on the dataset's files (path,
size, modification time) and the row addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from distill.data.image_files import ImageOptions

_OPENED: dict[str, object] = {}  # per process: the datasets this process has opened, by path


def source_of(address: str) -> str:
    """The dataset path of a row address (what the teacher cache stamps)."""
    return address.rsplit("::", 2)[0]


def row_addresses(path: str, split: str, rows) -> list[str]:
    return [f"{path}::{split}::{row}" for row in rows]


@dataclass(frozen=True)
class HFImageRow:
    """A row address -> its (C, H, W) uint8 image after the options' mode, resize and centre crop."""

    column: str
    options: ImageOptions

    def __call__(self, address: str) -> Tensor:
        from distill.data.hf_dataset import open_dataset, pil_images

        path, split, row = address.rsplit("::", 2)
        ds = _OPENED.get(path)
        if ds is None:
            ds = _OPENED[path] = open_dataset(path)
        part = ds[split] if hasattr(ds, "keys") else ds
        return pil_images([part[int(row)][self.column]], self.options, f"{path} ({split} split) row {row}")[0]
