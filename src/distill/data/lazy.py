"""Inputs that stay on disk: rows are file paths, decoded only when a batch asks for them.

``LazyInputs`` stands where a split's input tensor would (``Split(LazyInputs(...), targets)``):
it has a length, a shape and a device, and indexing it decodes just those rows into a tensor, so
a probe (``inputs[:2]``), validation (``predict`` slices) and the test evaluation work unchanged
while the images never sit in memory all at once. Training reads it through
``data/stream.py``'s ``StreamBatches`` (a DataLoader with worker processes); the teacher cache
keys on :meth:`LazyInputs.fingerprint` (paths, sizes, modification times, decode options), not
on the pixels.

``decode`` is any picklable callable ``path -> Tensor`` of one sample's shape (the image-folder
dataset's decode and transform); workers call it, so it must not hold open files or a device.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from distill.errors import DataError

Decode = Callable[[str], Tensor]


class LazyInputs:
    def __init__(self, paths: Sequence[str], decode: Decode, sample_shape: tuple[int, ...] | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", describe: str = "",
                 finish: Callable[[Tensor], Tensor] | None = None, source_of: Callable[[str], str] | None = None):
        self.paths = list(paths)
        # source_of (optional): rows are addresses inside a source (a Hugging Face dataset's folder), not
        # files; the cache key then stamps each source's files once instead of stat'ing every row.
        self.source_of = source_of
        # decode: one file -> one sample; finish (optional): the stacked batch -> model inputs, e.g.
        # uint8 -> normalised float once per batch instead of once per image (several times cheaper).
        self.decode, self.finish = decode, finish
        self.dtype = dtype
        self.device = torch.device(device)
        # What decode depends on besides the file (size, normalisation, colour): part of the cache key.
        self.describe = describe or getattr(decode, "__qualname__", type(decode).__name__)
        first = decode(self.paths[0]) if self.paths else torch.empty(())
        self.decoded_shape = first.shape  # what decode gives (before finish): every file must give it
        if sample_shape is None:
            sample_shape = tuple(first.shape if finish is None else finish(first[None]).shape[1:])
        self.sample_shape = tuple(sample_shape)

    # -- what code written for tensors asks of inputs -------------------------------------------
    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), *self.sample_shape))

    def dim(self) -> int:
        return 1 + len(self.sample_shape)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    @property
    def nbytes(self) -> int:
        """The decoded size of all rows: what holding them in memory would take."""
        return len(self) * int(torch.Size(self.sample_shape).numel()) * torch.empty((), dtype=self.dtype).element_size()

    def to(self, device=None, *args, **kwargs) -> LazyInputs:
        """The same rows, decoded onto ``device`` (nothing is read now)."""
        if device is None or isinstance(device, torch.dtype):
            return self
        return self._with(self.paths, device=device)

    def cpu(self) -> LazyInputs:
        return self.to("cpu")

    def __getitem__(self, key) -> Tensor:
        """The rows ``key`` selects (an int, a slice, or an index tensor/list), decoded and stacked."""
        if isinstance(key, int):
            return self._decode_one(self.paths[key]).to(self.device)
        return self.decode_rows(self.rows(key)).to(self.device)

    # -- rows --------------------------------------------------------------------------------------
    def rows(self, key) -> list[int]:
        if isinstance(key, slice):
            return list(range(len(self.paths)))[key]
        if isinstance(key, Tensor):
            return key.cpu().reshape(-1).tolist()
        return [int(i) for i in key]

    def decode_rows(self, rows: Sequence[int]) -> Tensor:
        """``rows`` decoded into one CPU tensor (what a loader worker does)."""
        if not rows:
            return torch.empty((0, *self.sample_shape), dtype=self.dtype)
        out = None
        for k, i in enumerate(rows):
            x = self.decode(self.paths[i])
            if x.shape != self.decoded_shape:
                raise DataError(f"{self.paths[i]}: decodes to shape {tuple(x.shape)} but {self.paths[0]} to "
                                f"{tuple(self.decoded_shape)}; give a resize (data.images.resize) so that all get "
                                f"one size")
            if out is None:
                out = torch.empty((len(rows), *x.shape), dtype=x.dtype)
            out[k] = x
        return (out if self.finish is None else self.finish(out)).to(self.dtype)

    def _decode_one(self, path: str) -> Tensor:
        x = self.decode(path)
        return x if self.finish is None else self.finish(x[None])[0]

    def subset(self, key) -> LazyInputs:
        """The rows ``key`` selects, still on disk (``Split.head``, carved validation splits)."""
        return self._with([self.paths[i] for i in self.rows(key)])

    def concat(self, other: LazyInputs) -> LazyInputs:
        """These rows then ``other``'s (an unlabelled pool joining the training files); one decode for both."""
        if not is_lazy(other) or other.describe != self.describe or other.sample_shape != self.sample_shape:
            raise DataError(f"cannot join {other!r} to {self!r}: streamed inputs need the same decode and shape; "
                            f"stream both (data.stream: true) with the same image options")
        return self._with(self.paths + other.paths)

    def _with(self, paths: list[str], device=None) -> LazyInputs:
        return LazyInputs(paths, self.decode, self.sample_shape, self.dtype, device or self.device, self.describe,
                          self.finish, self.source_of)

    def fingerprint(self) -> str:
        """A hash of what the decoded rows depend on: each file's path, size and modification time,
        and the decode options; the teacher cache keys on it instead of on the pixels."""
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{self.describe}|{self.sample_shape}|{self.dtype}".encode())
        if self.source_of is not None:
            for source in sorted({self.source_of(p) for p in self.paths}):
                h.update(source_stamp(source).encode())
            h.update("\n".join(self.paths).encode())
            return h.hexdigest()
        for path in self.paths:
            st = os.stat(path)
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"LazyInputs({len(self)} files, sample shape {self.sample_shape}, {self.describe})"


def source_stamp(source: str) -> str:
    """Path, size and modification time of every file of ``source`` (a file, or a folder's files)."""
    root = Path(source)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    stats = ((p, p.stat()) for p in files)
    return "".join(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n" for p, st in stats)


def running_channel_stats(samples: Iterable[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (unbiased) standard deviation, in float64, of (channels, values) tensors
    given one at a time: a streamed split's statistics with one decoded file in memory."""
    total = squares = None
    count = 0
    for x in samples:
        x = x.double()
        total = x.sum(1) if total is None else total + x.sum(1)
        squares = (x * x).sum(1) if squares is None else squares + (x * x).sum(1)
        count += x.shape[1]
    if total is None:
        raise DataError("no training files to compute the input statistics from")
    mean = total / count
    return mean, ((squares - count * mean * mean) / max(1, count - 1)).clamp_min(0).sqrt()


def is_lazy(inputs) -> bool:
    return isinstance(inputs, LazyInputs)


def cat(a, b):
    """``torch.cat([a, b])``, or the joined file lists when the inputs are on disk."""
    return a.concat(b) if is_lazy(a) or is_lazy(b) else torch.cat([a, b.to(a.device)])


def take(inputs, index):
    """``inputs[index]``, lazily for ``LazyInputs`` (no decoding), for splitting and subsetting."""
    return inputs.subset(index) if is_lazy(inputs) else inputs[index]
