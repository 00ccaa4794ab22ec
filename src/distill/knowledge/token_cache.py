"""Top-k teacher cache for causal language models: per loss token, the teacher's k most likely tokens,
their log-probabilities and the exact log of the remaining mass (``distill.types.TokenTopK``).

On disk (``cache_store``'s format: one memory-mapped ``.npy`` per array, ``meta.json`` written last
with the key and every file's checksum):

* ``indices`` (tokens, k) int32, ``logprobs`` (tokens, k) float16 or float32, ``tail`` (tokens,)
  float32: k * 6 + 4 bytes per token with float16 (196 at k = 32);
* ``offsets`` (samples + 1,) int64: sample i's loss tokens are rows ``offsets[i]:offsets[i + 1]``,
  in the row-major order of its loss positions, so a batch's rows are gathered by ``Batch.index``;
* ``filled`` (samples,) uint8: which samples are written, so an interrupted build resumes.

The key hashes the teacher's weights, the tokenizer, the data (token ids and loss masks), k, the
temperature and the storage dtype. A cache with another key, a bad checksum or no ``meta.json``
is not used: a partial build of the same key (its ``building.json`` says so) is resumed, anything
else is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from distill import distributed as dist
from distill.errors import ConfigError, DataError
from distill.io import atomic_write_text
from distill.knowledge import cache_store as store
from distill.knowledge.cache import hash_tensor, hash_weights, size_text
from distill.types import Batch, Outputs, TokenTopK

IGNORE = -100
BUILDING = "building.json"
Layout = dict[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class TokenCacheOptions:
    k: int = 32
    temperature: float = 1.0
    dtype: str = "float16"  # of the stored log-probabilities; indices are int32, the tail float32
    memory_mb: float = 1024.0  # a cache up to this size is read into memory once built


def encode_topk(logits: Tensor, k: int, temperature: float = 1.0) -> TokenTopK:
    """(N, V) logits -> the top-k log-probabilities of softmax(logits / T) and the exact log tail mass.

    The tail is the log-sum-exp of the other V - k logits minus the full one (not log(1 - sum p),
    which loses all precision when the k tokens hold nearly all the mass); -inf when k >= V.
    """
    z = logits.detach().float() / temperature
    k = min(k, z.shape[-1])
    lse = torch.logsumexp(z, dim=-1)
    values, indices = z.topk(k, dim=-1)
    tail = torch.logsumexp(z.scatter(1, indices, float("-inf")), dim=-1) - lse
    return TokenTopK(indices.to(torch.int32), values - lse[:, None], tail, temperature)


def loss_token_counts(targets: Tensor) -> np.ndarray:
    """(samples, T) targets with -100 at positions without a loss -> each sample's loss-token count."""
    return (targets != IGNORE).sum(-1).cpu().numpy().astype(np.int64)


def tokenizer_fingerprint(tokenizer) -> str:
    """What of a tokenizer decides the token ids: its vocabulary, special tokens and chat template."""
    if tokenizer is None or isinstance(tokenizer, str):
        return str(tokenizer)
    parts = {"vocab": sorted(tokenizer.get_vocab().items()),
             "special": getattr(tokenizer, "special_tokens_map", None),
             "chat_template": getattr(tokenizer, "chat_template", None)}
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def token_cache_key(teacher: nn.Module, tokenizer, data: Sequence[Tensor], options: TokenCacheOptions) -> str:
    """A hash of everything the stored rows depend on. ``data``: the token ids and targets (loss
    masks), in the order the cache's samples are numbered."""
    h = hashlib.blake2b(digest_size=20)
    hash_weights(h, teacher)
    h.update(tokenizer_fingerprint(tokenizer).encode())
    for t in data:
        hash_tensor(h, t)
    h.update(json.dumps({"kind": "token_topk", "k": options.k, "temperature": options.temperature,
                         "dtype": options.dtype}).encode())
    return h.hexdigest()


def token_layout(counts: np.ndarray, options: TokenCacheOptions) -> Layout:
    tokens, k = int(np.sum(counts)), options.k
    return {"indices": ((tokens, k), "int32"), "logprobs": ((tokens, k), np.dtype(options.dtype).name),
            "tail": ((tokens,), "float32"), "offsets": ((len(counts) + 1,), "int64"),
            "filled": ((len(counts),), "uint8")}


def sample_rows(offsets: np.ndarray, index: Tensor | np.ndarray) -> np.ndarray:
    """The row numbers of samples ``index``, sample after sample, each in its token order."""
    index = np.asarray(index.cpu() if isinstance(index, Tensor) else index, dtype=np.int64)
    starts = offsets[index]
    lengths = offsets[index + 1] - starts
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + within


class TokenCache:
    """The stored top-k rows; ``gather(index)`` gives a batch's ``TokenTopK`` in loss-position order."""

    def __init__(self, arrays: dict[str, np.ndarray | Tensor], temperature: float, device: torch.device,
                 build_seconds: float = 0.0, nbytes: int = 0):
        self.arrays, self.temperature, self.device = arrays, temperature, torch.device(device)
        self.offsets = np.asarray(arrays["offsets"], dtype=np.int64)
        self.tokens = int(self.offsets[-1])
        self.k = int(arrays["indices"].shape[1])
        self.build_seconds, self.nbytes = build_seconds, nbytes

    @property
    def bytes_per_token(self) -> float:
        """Stored bytes per loss token, the per-sample offsets and flags included."""
        return self.nbytes / max(self.tokens, 1)

    def rows(self, index: Tensor | np.ndarray) -> np.ndarray:
        return sample_rows(self.offsets, index)

    def _take(self, name: str, rows: np.ndarray) -> Tensor:
        a = self.arrays[name]
        if isinstance(a, Tensor):
            return a[torch.from_numpy(rows).to(a.device)]
        return torch.from_numpy(np.ascontiguousarray(a[rows])).to(self.device)

    def gather(self, index: Tensor | np.ndarray) -> TokenTopK:
        rows = self.rows(index)
        return TokenTopK(self._take("indices", rows).long(), self._take("logprobs", rows).float(),
                         self._take("tail", rows).float(), self.temperature)


class CachedTokenTeacher:
    """A drop-in for the live teacher that serves ``Outputs(topk=...)``; batches without sample
    positions (the student's own on-policy samples) go to ``live``."""

    def __init__(self, cache: TokenCache, live: Callable[[Batch], Outputs] | None = None):
        self.cache, self.live = cache, live

    def __call__(self, batch: Batch) -> Outputs:
        if batch.index is None:
            if self.live is None:
                raise ValueError("the top-k teacher cache needs Batch.index (sample positions) to look rows up")
            return self.live(batch)
        topk = self.cache.gather(batch.index)
        expected = int((batch.targets != IGNORE).sum())
        if len(topk.indices) != expected:
            raise DataError(f"the teacher's top-k cache holds {len(topk.indices)} loss tokens for this batch but it "
                            f"has {expected}; the data changed since the cache was built: delete the cache folder")
        return Outputs(None, topk=topk)

    def close(self) -> None:
        if self.live is not None and hasattr(self.live, "close"):
            self.live.close()


def build_token_cache(teacher: Callable[[Batch], Outputs], batches: Iterable[Batch], counts: np.ndarray, key: str,
                      options: TokenCacheOptions, directory: Path | None, device: torch.device | str = "cpu",
                      log: Callable[[str], None] = print) -> TokenCache:
    """The cache in ``directory`` when it is complete and valid for ``key``, else built (or resumed).

    ``batches`` cover every sample once (``Batch.index`` set); ``counts[i]`` is sample i's number of
    loss tokens (``loss_token_counts``), and ``teacher(batch).logits`` the (N, V) logits at those
    tokens. Under torchrun each rank fills the batches ``i % world == rank`` of one shared file.
    ``directory=None`` keeps the cache in memory (single process).
    """
    counts = np.asarray(counts, dtype=np.int64)
    layout = token_layout(counts, options)
    nbytes = store.layout_bytes(layout)
    started = time.perf_counter()
    if directory is None and dist.world_size() > 1:
        raise ValueError("a distributed run needs a cache directory shared by its ranks")
    state = dist.broadcast_object(_state(directory, key, layout) if dist.is_main() else None)
    if state == "valid":
        log(f"teacher top-k cache: reusing {directory} ({size_text(nbytes)}, k={options.k})")
        arrays = store.open_arrays(directory, layout)
    else:
        log(f"teacher top-k cache: {'resuming' if state == 'partial' else 'building'} {len(counts)} samples, "
            f"{int(counts.sum())} tokens, k={options.k}: {size_text(nbytes)}" + (f" ({directory})" if directory else ""))
        arrays = _fill(teacher, batches, counts, key, options, directory, layout, resume=state == "partial")
    cache_device = torch.device(device)
    if nbytes <= options.memory_mb * 2**20:
        arrays = {name: torch.from_numpy(np.array(a)).to(cache_device) for name, a in arrays.items()}
    return TokenCache(arrays, options.temperature, cache_device, time.perf_counter() - started, nbytes)


def _state(directory: Path | None, key: str, layout: Layout) -> str:
    """'valid' (complete, this key, intact), 'partial' (an interrupted build of this key) or 'stale'."""
    if directory is None:
        return "stale"
    if store.is_valid(directory, key, layout):
        return "valid"
    try:
        building = json.loads((directory / BUILDING).read_text())
    except (OSError, ValueError):
        return "stale"
    same = building.get("key") == key and building.get("layout") == _jsonable(layout)
    files = all(store.array_path(directory, name).is_file() for name in layout)
    return "partial" if same and files and store.read_meta(directory) is None else "stale"


def _jsonable(layout: Layout) -> dict:
    return {name: [list(shape), dtype] for name, (shape, dtype) in layout.items()}


def _fill(teacher, batches, counts, key, options, directory, layout, resume: bool) -> dict[str, np.ndarray]:
    if directory is None:
        arrays = {name: np.zeros(shape, dtype) for name, (shape, dtype) in layout.items()}
    else:
        if dist.is_main() and not resume:
            store.invalidate(directory)
            (directory / BUILDING).unlink(missing_ok=True)
            store.create_arrays(directory, layout)
            atomic_write_text(directory / BUILDING, json.dumps({"key": key, "layout": _jsonable(layout)}))
        dist.barrier()
        arrays = store.open_arrays(directory, layout, mode="r+")
    offsets = np.concatenate([[0], np.cumsum(counts)])
    if dist.is_main():
        arrays["offsets"][:] = offsets
    for number, batch in enumerate(batches):
        if number % dist.world_size() != dist.rank():
            continue
        index = np.asarray(batch.index.cpu(), dtype=np.int64)
        if arrays["filled"][index].all():  # written before an interruption
            continue
        given = loss_token_counts(batch.targets)
        if not np.array_equal(given, counts[index]):
            raise DataError(f"batch {number}: its loss-token counts {given.tolist()} differ from the counts the "
                            f"cache was laid out for {counts[index].tolist()}")
        with torch.no_grad():
            logits = teacher(batch).logits
        if logits.shape[0] != given.sum():
            raise DataError(f"batch {number}: the teacher gave {logits.shape[0]} rows of logits for "
                            f"{int(given.sum())} loss tokens")
        if logits.shape[-1] < options.k:  # the arrays were laid out for k columns
            raise ConfigError(f"cache.top_k {options.k} is larger than the teacher's vocabulary "
                              f"({logits.shape[-1]} tokens); set cache.top_k to at most {logits.shape[-1]}")
        top = encode_topk(logits, options.k, options.temperature)
        rows = sample_rows(offsets, index)
        arrays["indices"][rows] = top.indices.cpu().numpy()
        arrays["logprobs"][rows] = top.logprobs.cpu().numpy().astype(options.dtype)
        arrays["tail"][rows] = top.tail_logprob.cpu().numpy()
        arrays["filled"][index] = 1  # after the rows: an interrupted process leaves no flag without its rows
    if directory is None:
        _check_filled(arrays["filled"])
        return arrays

    def before_seal():
        _check_filled(store.open_arrays(directory, ["filled"])["filled"])
        (directory / BUILDING).unlink(missing_ok=True)

    info = {"samples": len(counts), "tokens": int(counts.sum()), "k": options.k, "temperature": options.temperature}
    return store.seal_shared(directory, arrays, key, layout, info, before_seal)


def _check_filled(filled: np.ndarray) -> None:
    missing = np.flatnonzero(filled == 0)
    if len(missing):
        raise DataError(f"the batches given to the top-k cache build missed {len(missing)} sample(s) "
                        f"(first: {missing[:5].tolist()}); every sample must be in one batch")
