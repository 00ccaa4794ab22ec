"""Training batches read from disk: a DataLoader whose worker processes decode and augment each batch.

``StreamBatches`` is ``InMemoryBatches`` for inputs that stay on disk (``data/lazy.py``): the
main process draws the epoch's order and augmentation exactly as the in-memory path does (from
(seed, epoch), or stored view ``epoch mod views`` from (seed, view) for the teacher cache), and
``workers`` processes decode those rows and apply those draws, a batch each. So a streamed run
sees the very batches an in-memory run of the same images would, and the teacher cache (keyed by
sample id and view) holds the teacher's outputs on exactly the student's view. Only one batch per
worker (times ``prefetch``) is decoded at a time; the images never sit in memory together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from distill.data.augment import AugmentParams, BatchAugment
from distill.data.batches import InMemoryBatches
from distill.data.lazy import LazyInputs, is_lazy
from distill.errors import DataError
from distill.types import Batch

DEFAULT_WORKERS = 2  # data.workers when streaming and not set
Plan = Sequence[tuple[Tensor, AugmentParams | None]]


def decode_view(inputs: LazyInputs, augment: BatchAugment | None, index: Tensor,
                view: AugmentParams | None) -> Tensor:
    """Rows ``index`` decoded and given the augmentation ``view`` (partners of a mixed view decoded too)."""
    x = inputs.decode_rows(index.tolist())
    if view is None or augment is None:
        return x
    mix = getattr(view, "mix", None)
    partners = inputs.decode_rows(mix.partner.tolist()) if mix is not None else None
    return augment.apply(x, view, partners)


class PlannedBatches(Dataset):
    """Item ``(index, view)`` is that batch, decoded and augmented (run inside a loader worker)."""

    def __init__(self, inputs: LazyInputs, augment: BatchAugment | None):
        self.inputs, self.augment = inputs.cpu(), augment

    def __getitem__(self, item: tuple[Tensor, AugmentParams | None]) -> Tensor | DecodeFailure:
        index, view = item
        try:
            return decode_view(self.inputs, self.augment, index, view)
        except DataError as exc:  # re-raised by the training process as its one line, not a worker traceback
            return DecodeFailure(str(exc))


class PlanSampler(Sampler):
    """Hands the loader the current plan's (index, view) items; set ``plan`` before each epoch."""

    def __init__(self):
        self.plan: list = []

    def __iter__(self):
        return iter(self.plan)

    def __len__(self) -> int:
        return len(self.plan)


@dataclass
class DecodeFailure:
    message: str


def planned_loader(inputs: LazyInputs, augment: BatchAugment | None, sampler: PlanSampler, workers: int,
                   pin_memory: bool = False, persistent: bool = False, prefetch: int = 4) -> DataLoader:
    return DataLoader(PlannedBatches(inputs, augment), batch_size=None, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, persistent_workers=persistent and workers > 0,
                      prefetch_factor=prefetch if workers else None)


def checked(loader: DataLoader) -> Iterator[Tensor]:
    for x in loader:
        if isinstance(x, DecodeFailure):
            raise DataError(x.message)
        yield x


def load_planned(inputs: LazyInputs, augment: BatchAugment | None, plan: Plan, workers: int,
                 pin_memory: bool = False) -> Iterator[Tensor]:
    """The plan's batches in order, decoded by ``workers`` processes (0: in this process), once."""
    sampler = PlanSampler()
    sampler.plan = list(plan)
    yield from checked(planned_loader(inputs, augment, sampler, workers, pin_memory))


class StreamBatches(InMemoryBatches):
    """The in-memory batch source's order and views, with rows decoded from disk by loader workers."""

    def __init__(self, inputs: LazyInputs, targets: Tensor, batch_size: int, *, workers: int = DEFAULT_WORKERS,
                 device: torch.device | str = "cpu", **kwargs):
        super().__init__(inputs.cpu(), targets, batch_size, **kwargs)  # draws on the CPU; batches go to device
        self.workers, self.device = workers, torch.device(device)
        self._sampler, self._loader = PlanSampler(), None

    def epoch(self, epoch: int) -> Iterator[Batch]:
        plan = list(self.plan(epoch))
        pin = self.device.type == "cuda"
        if self._loader is None:  # workers start once and stay for every epoch (persistent)
            self._loader = planned_loader(self.inputs, self.augment, self._sampler, self.workers, pin, persistent=True)
        self._sampler.plan = plan
        for (index, view), x in zip(plan, checked(self._loader), strict=True):
            yield Batch(inputs=x.to(self.device, non_blocking=pin),
                        targets=self.targets[index.to(self.targets.device)], index=index, view=view)

    def worker_pids(self) -> list[int]:
        """The loader's worker processes (for measuring their CPU time); [] before the first epoch."""
        iterator = getattr(self._loader, "_iterator", None)
        return [w.pid for w in getattr(iterator, "_workers", [])]


def batch_source(inputs, targets: Tensor, batch_size: int, *, workers: int | None = None,
                 device: torch.device | str | None = None, **kwargs) -> InMemoryBatches:
    """``StreamBatches`` for inputs on disk (``workers`` default 2), else ``InMemoryBatches``."""
    if is_lazy(inputs):
        return StreamBatches(inputs, targets, batch_size, workers=DEFAULT_WORKERS if workers is None else workers,
                             device=device or inputs.device, **kwargs)
    return InMemoryBatches(inputs, targets, batch_size, **kwargs)
