"""On-disk layout of the teacher knowledge cache: one ``.npy`` file per array plus ``meta.json``.

Arrays are written through ``numpy`` memory maps, so several ranks can each fill their own rows
of one file. ``meta.json`` is removed before a rebuild and written last, with the cache key and a
checksum of every array file: a cache without it, with another key or a checksum that does not
match is stale or corrupt, and is rebuilt rather than used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from distill import distributed as dist
from distill.io import atomic_write_text

META = "meta.json"
FORMAT = 1


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def array_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.npy"


def read_meta(directory: Path) -> dict | None:
    try:
        meta = json.loads((directory / META).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def is_valid(directory: Path, key: str, layout: dict[str, tuple[tuple[int, ...], str]]) -> bool:
    """True when ``directory`` holds a complete cache for ``key`` with exactly this layout and intact files."""
    meta = read_meta(directory)
    if meta is None or meta.get("key") != key or set(meta.get("arrays", {})) != set(layout):
        return False
    for name, (shape, dtype) in layout.items():
        entry, path = meta["arrays"][name], array_path(directory, name)
        if tuple(entry["shape"]) != tuple(shape) or entry["dtype"] != dtype or not path.is_file():
            return False
        if file_digest(path) != entry["digest"]:
            return False
    return True


def invalidate(directory: Path) -> None:
    (directory / META).unlink(missing_ok=True)


def create_arrays(directory: Path, layout: dict[str, tuple[tuple[int, ...], str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, (shape, dtype) in layout.items():
        arr = np.lib.format.open_memmap(array_path(directory, name), mode="w+", dtype=dtype, shape=shape)
        del arr


def open_arrays(directory: Path, names, mode: str = "r") -> dict[str, np.ndarray]:
    return {name: np.load(array_path(directory, name), mmap_mode=mode) for name in names}


def seal(directory: Path, key: str, layout: dict[str, tuple[tuple[int, ...], str]], info: dict) -> None:
    """Write ``meta.json`` (the cache key and each file's checksum): from now on the cache is usable."""
    arrays = {name: {"shape": list(shape), "dtype": dtype, "digest": file_digest(array_path(directory, name))}
              for name, (shape, dtype) in layout.items()}
    atomic_write_text(directory / META, json.dumps({"format": FORMAT, "key": key, "arrays": arrays, **info},
                                                   indent=1))


def seal_shared(directory: Path, arrays: dict[str, np.ndarray], key: str, layout: dict[str, tuple[tuple[int, ...], str]],
                info: dict, before_seal=None) -> dict[str, np.ndarray]:
    """Flush every rank's rows of the shared files, then rank 0 (after ``before_seal()``) seals the cache;
    returns the arrays reopened read-only."""
    for name in list(arrays):  # flushed and dropped: the writable maps close before the files are checksummed
        arrays.pop(name).flush()
    dist.barrier()
    if dist.is_main():
        if before_seal is not None:
            before_seal()
        seal(directory, key, layout, info)
    dist.barrier()
    return open_arrays(directory, layout)


def layout_bytes(layout: dict[str, tuple[tuple[int, ...], str]]) -> int:
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in layout.values())
