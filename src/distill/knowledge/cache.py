"""Teacher knowledge cache: a frozen teacher's outputs, computed once per (sample, view) and reused.

``CachedTeacher`` is a drop-in replacement for ``LiveTeacher``: it looks up the outputs of a batch
by its sample positions (``batch.index``) and stored augmentation view (``batch.view.id``), which
``InMemoryBatches(views=k)`` provides. Logits (and any hooked features a method asks for) are
stored in float16 or float32; logits can instead be kept as their top-k (values, indices) plus
the log-sum-exp, from which the full vector is rebuilt with the left-over probability spread
evenly over the other classes (exact top-k logits, exact probabilities at temperature 1).

The cache is keyed on a hash of the teacher weights, the training data, the augmentation and the
storage options; see ``cache_store`` for the file format and how stale or corrupt caches are found.
Causal language models have their own per-token top-k cache, ``token_cache``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from distill import distributed as dist
from distill.data.augment import BatchAugment
from distill.data.batches import StoredView, augmented, stored_view, view_params
from distill.data.lazy import is_lazy
from distill.data.stream import load_planned
from distill.data.text import is_token_ids, length_order
from distill.knowledge import cache_store as store
from distill.knowledge.teacher import LiveTeacher
from distill.types import Batch, Outputs


@dataclass(frozen=True)
class CacheOptions:
    views: int = 1
    dtype: str = "float16"
    top_k: int | None = None
    memory_mb: float = 1024.0
    chunk: int = 256  # samples per teacher forward pass while building (large ones are slower on CPU)
    workers: int = 2  # loader processes decoding inputs read from disk (data/lazy.py) while building


def is_frozen(model: nn.Module) -> bool:
    return not model.training and not any(p.requires_grad for p in model.parameters())


def hash_tensor(h, t: Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")


def hash_weights(h, model: nn.Module) -> None:
    """The teacher's identity in a cache key: every tensor of its state, by name."""
    for name, t in model.state_dict().items():
        h.update(name.encode())
        hash_tensor(h, t)


def cache_key(teacher: nn.Module, inputs: Tensor, targets: Tensor, augment: BatchAugment | None, seed: int,
              modules: tuple[str, ...], options: CacheOptions) -> str:
    """A hash of everything the cached values depend on: weights, data, augmentation, storage options."""
    h = hashlib.blake2b(digest_size=20)
    hash_weights(h, teacher)
    if is_lazy(inputs):  # files on disk: their paths, sizes and times, not the pixels (never all in memory)
        h.update(inputs.fingerprint().encode())
    else:
        hash_tensor(h, inputs)
    hash_tensor(h, targets)
    aug = None if augment is None else [*augment.describe(), seed]
    h.update(json.dumps({"augment": aug, "modules": list(modules), "views": options.views,
                         "dtype": options.dtype, "top_k": options.top_k}).encode())
    return h.hexdigest()


def encode(logits: Tensor, features: dict[str, Tensor], options: CacheOptions) -> dict[str, np.ndarray]:
    """Outputs of one chunk as the arrays to store (names as in ``layout``)."""
    out = {}
    logits = logits.float()
    if options.top_k is not None and options.top_k < logits.shape[-1]:
        values, indices = logits.topk(options.top_k, dim=-1)
        out["topk_values"] = values.numpy().astype(options.dtype)
        out["topk_indices"] = indices.numpy().astype(_index_dtype(logits.shape[-1]))
        out["logsumexp"] = torch.logsumexp(logits, dim=-1).numpy()
    else:
        out["logits"] = logits.numpy().astype(options.dtype)
    for path, t in features.items():
        out[f"feature.{path}"] = t.float().contiguous().numpy().astype(options.dtype)
    return out


def _index_dtype(classes: int) -> str:
    return "int16" if classes <= np.iinfo(np.int16).max else "int32"


def reconstruct(values: Tensor, indices: Tensor, logsumexp: Tensor, classes: int) -> Tensor:
    """Full logits from the top-k: exact at the k stored classes, the rest of the mass spread evenly.

    The fill value is never above the k-th largest logit (the mean of the others cannot exceed it),
    so the top-k classes and their order are kept.
    """
    values, logsumexp = values.float(), logsumexp.float()
    rest = (1 - torch.exp(values - logsumexp[:, None]).sum(-1)).clamp_min(1e-12)
    fill = torch.log(rest / (classes - values.shape[-1])) + logsumexp
    full = fill[:, None].expand(len(values), classes).clone()
    return full.scatter_(1, indices.long(), values)


def layout_for(views: int, n: int, probe: Outputs, options: CacheOptions) -> dict[str, tuple[tuple[int, ...], str]]:
    arrays = encode(probe.logits[:1].cpu(), {k: v[:1].cpu() for k, v in probe.features.items()}, options)
    return {name: ((views, n, *a.shape[1:]), str(a.dtype)) for name, a in arrays.items()}


class CachedTeacher:
    """Serves teacher outputs from the cache; batches without sample positions go to the live teacher."""

    def __init__(self, live: LiveTeacher, arrays: dict[str, np.ndarray | Tensor], classes: int,
                 device: torch.device, build_seconds: float = 0.0, nbytes: int = 0):
        self.live, self.classes, self.device = live, classes, torch.device(device)
        self.arrays = arrays
        self.in_memory = all(isinstance(a, Tensor) for a in arrays.values())
        self.views = next(iter(arrays.values())).shape[0]
        self.build_seconds, self.nbytes = build_seconds, nbytes

    def _rows(self, name: str, view: int, index: Tensor) -> Tensor:
        a = self.arrays[name]
        if isinstance(a, Tensor):
            return a[view][index.to(a.device)]
        return torch.from_numpy(np.ascontiguousarray(a[view][index.numpy()])).to(self.device)

    def __call__(self, batch: Batch) -> Outputs:
        if batch.index is None:
            return self.live(batch)
        view = _view_id(batch.view)
        if view >= self.views:
            raise ValueError(f"batch uses view {view} but the cache holds {self.views} view(s)")
        if "logits" in self.arrays:
            logits = self._rows("logits", view, batch.index).float()
        else:
            logits = reconstruct(self._rows("topk_values", view, batch.index),
                                 self._rows("topk_indices", view, batch.index),
                                 self._rows("logsumexp", view, batch.index), self.classes)
        features = {name[len("feature."):]: self._rows(name, view, batch.index).float()
                    for name in self.arrays if name.startswith("feature.")}
        return Outputs(logits, features)

    def close(self) -> None:
        self.live.close()


def _view_id(view) -> int:
    if view is None:
        return 0
    if getattr(view, "id", -1) >= 0 and hasattr(view, "stored"):  # data/spec_augment.py's stored views
        return view.id
    if not isinstance(view, StoredView):
        raise ValueError("the teacher cache needs replayable views: build the batches with "
                         "InMemoryBatches(..., views=k) so each batch carries its stored view id")
    return view.id


def build_cache(live: LiveTeacher, inputs: Tensor, targets: Tensor, augment: BatchAugment | None, seed: int,
                epochs: int, options: CacheOptions, directory: Path | None, device: torch.device,
                modules: tuple[str, ...] = (), log: Callable[[str], None] = print) -> CachedTeacher:
    """Load the cache in ``directory`` if it is valid for this teacher and data, else (re)build it.

    The views used in ``epochs`` epochs (at most ``options.views``) are stored. Under torchrun each
    rank computes a strided shard of the rows of one shared file; ``directory=None`` keeps the
    cache in memory only (single process).
    """
    n = len(inputs)
    views = min(options.views, epochs) if augment is not None else 1
    probe = live(Batch(inputs[:2], targets[:2]))
    layout = layout_for(views, n, probe, options)
    classes = probe.logits.shape[-1]
    nbytes = store.layout_bytes(layout)
    # Inputs read from disk are bigger than memory by assumption: their cache stays memory-mapped too.
    in_memory = nbytes <= options.memory_mb * 2**20 and not (is_lazy(inputs) and directory is not None)
    key = cache_key(live.model, inputs, targets, augment, seed, modules, options)
    started = time.perf_counter()
    if directory is None and dist.world_size() > 1:
        raise ValueError("a distributed run needs a cache directory shared by its ranks")
    # Rank 0 decides, so every rank takes the same branch (the build has barriers).
    valid = directory is not None and dist.broadcast_object(dist.is_main() and store.is_valid(directory, key, layout))
    if valid:
        log(f"teacher cache: reusing {directory} ({size_text(nbytes)})")
        arrays = store.open_arrays(directory, layout)
    else:
        where = "memory" if in_memory else "a memory-mapped file"
        log(f"teacher cache: building {views} view(s) x {n} samples, {', '.join(layout)}: "
            f"{size_text(nbytes)} in {where}" + (f" ({directory})" if directory else ""))
        arrays = _fill(live, inputs, targets, augment, seed, views, options, directory, layout, key)
    seconds = time.perf_counter() - started
    if in_memory:
        arrays = {k: torch.from_numpy(np.array(a)).to(device) for k, a in arrays.items()}
    return CachedTeacher(live, arrays, classes, device, build_seconds=seconds, nbytes=nbytes)


def in_length_order(live: LiveTeacher, inputs: Tensor, rows: Tensor) -> Tensor:
    """``rows`` with sentences (token ids) shortest first, so that each chunk of the build pads only
    to about its own length; other inputs unchanged. Only speed depends on the order: every row is
    stored at its own index."""
    if not is_token_ids(inputs):
        return rows
    return rows[length_order(inputs[rows.to(inputs.device)], getattr(live.model, "pad_id", 0))]


def _fill(live, inputs, targets, augment, seed, views, options, directory, layout, key) -> dict[str, np.ndarray]:
    if directory is None:
        arrays = {k: np.zeros(shape, dtype) for k, (shape, dtype) in layout.items()}
    else:
        if dist.is_main():
            store.invalidate(directory)
            store.create_arrays(directory, layout)
        dist.barrier()
        arrays = store.open_arrays(directory, layout, mode="r+")
    rows = in_length_order(live, inputs, torch.arange(dist.rank(), len(inputs), dist.world_size()))
    for view in range(views):
        for index, x in view_chunks(inputs, augment, seed, view, rows, options):
            out = live(Batch(x, targets[index.to(targets.device)], index=index))
            del x  # before the next chunk is read: one chunk of inputs in memory at a time, not two
            chunk = encode(out.logits.cpu(), {k: v.cpu() for k, v in out.features.items()}, options)
            for name, values in chunk.items():
                arrays[name][view, index.numpy()] = values
    if directory is None:
        return arrays
    return store.seal_shared(directory, arrays, key, layout, {"views": views, "samples": len(inputs)})


def view_chunks(inputs, augment: BatchAugment | None, seed: int, view: int, rows: Tensor,
                options: CacheOptions):
    """(sample positions, inputs) per chunk of ``rows`` in stored view ``view``: the same (mixed) view the
    student's batch will hold. Inputs on disk are decoded by ``options.workers`` loader processes."""
    image_size = tuple(inputs.shape[-2:]) if inputs.dim() == 4 else (1, 1)
    params = view_params(augment, len(inputs), seed, view, image_size) if augment is not None else None
    chunks = [rows[start : start + options.chunk] for start in range(0, len(rows), options.chunk)]
    if is_lazy(inputs):
        plan = [(index, None if params is None else stored_view(params, index, view)) for index in chunks]
        for index, x in zip(chunks, load_planned(inputs, augment, plan, options.workers), strict=True):
            yield index, x.to(inputs.device)
            del x
        return
    for index in chunks:
        index_dev = index.to(inputs.device)
        x = inputs[index_dev]
        if params is not None:
            x = augmented(augment, inputs, index_dev, stored_view(params, index, view))
        yield index, x


def size_text(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MiB" if nbytes >= 2**20 else f"{nbytes / 1024:.1f} KiB"


def choose_teacher(mode: str, live: LiveTeacher, build: Callable[[], CachedTeacher]) -> LiveTeacher | CachedTeacher:
    """``auto`` caches whenever the teacher is frozen, ``on`` always (error if it is not), ``off`` never."""
    if mode == "off":
        return live
    if not is_frozen(live.model):
        if mode == "on":
            raise ValueError("cache.mode is 'on' but the teacher is not frozen; its outputs would change")
        return live
    return build()
