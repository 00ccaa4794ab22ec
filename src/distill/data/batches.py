"""Batch sources the trainer iterates over, one epoch at a time.

``InMemoryBatches`` is the default: the whole dataset sits on the training device and each
batch is an index slice, augmented as one tensor. ``LoaderBatches`` wraps a user's
``DataLoader`` for data that does not fit in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from distill.data.augment import AugmentParams, BatchAugment
from distill.errors import DataError
from distill.types import Batch


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Batch]: ...


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator that depends only on (seed, epoch), so a resumed run replays the same draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@dataclass
class StoredView(AugmentParams):
    """Augmentation draws of stored view ``id``: replayable from (seed, id), so a cache can key on it."""

    id: int = 0


def view_params(augment: BatchAugment, n: int, seed: int, view: int,
                image_size: tuple[int, int] = (28, 28)) -> AugmentParams:
    """The augmentation of all ``n`` samples in stored view ``view``, from a generator seeded by (seed, view).

    Mixing partners are dataset positions, so the mixed view of a sample is fixed by (seed, view) too.
    """
    return augment.sample(n, torch.Generator().manual_seed(seed * 1_000_003 + 7_919 * (view + 1)), n, image_size)


def select_view(params: AugmentParams, index: Tensor) -> AugmentParams:
    """The draws of the samples at ``index`` (partners stay dataset positions)."""
    mix = params.mix.select(index) if params.mix is not None else None
    return AugmentParams(params.dx[index], params.dy[index], params.flip[index], mix)


def stored_view(params, index: Tensor, view: int):
    """The draws of the samples at ``index`` in stored view ``view``, for either kind of draws: image views
    (crop, flip, mix; partners stay dataset positions) or draws that select themselves (SpecAugment's)."""
    if hasattr(params, "stored"):  # data/spec_augment.py
        return params.stored(index, view)
    return select_view(params, index)


def augmented(augment: BatchAugment, inputs: Tensor, index: Tensor, params: AugmentParams) -> Tensor:
    """The view ``params`` of ``inputs[index]``, its mixing partners gathered from ``inputs``."""
    mix = getattr(params, "mix", None)  # only image views mix (data/spec_augment.py has no partners)
    partners = inputs[mix.partner.to(inputs.device)] if mix is not None else None
    return augment.apply(inputs[index], params, partners)


class InMemoryBatches:
    def __init__(
        self,
        inputs: Tensor,
        targets: Tensor,
        batch_size: int,
        shuffle: bool = True,
        augment: BatchAugment | None = None,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        views: int | None = None,
    ):
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.drop_last = seed, drop_last
        self.rank, self.world_size = rank, world_size
        # views=k: epoch e augments sample i as stored view (e mod k); None: fresh draws every epoch.
        self.views = views
        self._view_params: dict[int, AugmentParams] = {}

    def _shard_size(self) -> int:
        return len(self.inputs) // self.world_size if self.world_size > 1 else len(self.inputs)

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def plan(self, epoch: int) -> Iterator[tuple[Tensor, AugmentParams | None]]:
        """Epoch ``epoch`` as (sample positions, augmentation draws) per batch, nothing gathered yet:
        the order and the draws depend only on (seed, epoch), wherever the rows are then read from."""
        generator = epoch_generator(self.seed, epoch)
        n = len(self.inputs)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            # Every rank draws the same permutation and takes an equal-length strided shard.
            order = order[: self._shard_size() * self.world_size][self.rank :: self.world_size]
        device = self.inputs.device
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                break
            view = None
            if self.augment is not None:
                view = (self._view(epoch, index.to(device)) if self.views
                        else self.augment.sample(len(index), generator, n, self._image_size))
                if getattr(view, "mix", None) is not None:
                    view.partner_targets = self.targets[view.mix.partner.to(self.targets.device)]
            yield index, view

    def epoch(self, epoch: int) -> Iterator[Batch]:
        device = self.inputs.device
        for index, view in self.plan(epoch):
            index_dev = index.to(device)
            x = self.inputs[index_dev] if view is None else augmented(self.augment, self.inputs, index_dev, view)
            yield Batch(inputs=x, targets=self.targets[index_dev], index=index, view=view)

    @property
    def _image_size(self) -> tuple[int, int]:
        return tuple(self.inputs.shape[-2:]) if self.inputs.dim() == 4 else (1, 1)

    def _view(self, epoch: int, index: Tensor) -> StoredView:
        v = epoch % self.views
        if v not in self._view_params:  # kept on the training device, like the data
            p = view_params(self.augment, len(self.inputs), self.seed, v, self._image_size)
            if hasattr(p, "stored"):  # draws that make their own stored view (data/spec_augment.py)
                self._view_params[v] = p.to(index.device)
            else:
                mix = p.mix.to(index.device) if p.mix is not None else None
                self._view_params[v] = AugmentParams(*(t.to(index.device) for t in (p.dx, p.dy, p.flip)), mix)
        p = self._view_params[v]
        if hasattr(p, "stored"):
            return p.stored(index, v)
        p = select_view(p, index)
        return StoredView(p.dx, p.dy, p.flip, p.mix, id=v)


INPUT_KEYS = ("inputs", "input", "pixel_values", "image", "input_ids", "x")
LABEL_KEYS = ("labels", "label", "targets", "target", "y")


def _pick(item: dict, key: str | None, candidates: tuple[str, ...], what: str, option: str):
    if key is not None:
        if key not in item:
            raise DataError(f"the DataLoader's batches have no key '{key}' ({what}); keys: {', '.join(item)}; "
                           f"set LoaderBatches(..., {option}=...)")
        return item[key]
    for name in candidates:
        if name in item:
            return item[name]
    raise DataError(f"no {what} among the batch keys {', '.join(item)}; name it with LoaderBatches(..., {option}=...)")


class LoaderBatches:
    """Adapts a DataLoader yielding (inputs, targets), (inputs, targets, index) or dicts.

    Dict batches (Hugging Face datasets style) are read by ``input_key`` and ``label_key``; when not
    given, the first present of ``INPUT_KEYS`` / ``LABEL_KEYS`` ("pixel_values", "labels", ...).
    """

    def __init__(self, loader: DataLoader, device: torch.device | str = "cpu", input_key: str | None = None,
                 label_key: str | None = None, index_key: str | None = None):
        self.loader, self.device = loader, torch.device(device)
        self.input_key, self.label_key, self.index_key = input_key, label_key, index_key

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        for item in self.loader:
            if isinstance(item, dict):
                x = _pick(item, self.input_key, INPUT_KEYS, "inputs", "input_key")
                y = _pick(item, self.label_key, LABEL_KEYS, "labels", "label_key")
                index = item.get(self.index_key) if self.index_key else None
            else:
                x, y = item[0], item[1]
                index = item[2] if len(item) > 2 else None
            yield Batch(inputs=x.to(self.device), targets=y.to(self.device), index=index)
