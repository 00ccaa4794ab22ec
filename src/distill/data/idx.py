"""Reader for the IDX format used by MNIST and Fashion-MNIST (gzip-compressed or plain)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from distill.errors import DataError

# Third byte of the magic number: element type. Only unsigned bytes occur in (Fashion-)MNIST.
_UBYTE = 0x08


def read_idx(path: str | Path, expected_ndim: int | None = None) -> torch.Tensor:
    """Read an IDX file into a uint8 tensor, validating magic number, dimensions and length."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip raises BadGzipFile (an OSError) or EOFError on truncation
        raise DataError(f"cannot read {path}: {exc}; the file is corrupt, download or install it again") from None
    if len(raw) < 4:
        raise DataError(f"{path} is corrupt: {len(raw)} bytes is too short for an IDX header")
    zero1, zero2, dtype, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or dtype != _UBYTE or ndim == 0:
        raise DataError(
            f"{path} is not an unsigned-byte IDX file (magic number {raw[:4].hex()}); the file is corrupt or of another kind"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise DataError(f"{path} has {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is corrupt: header cut short")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is corrupt: header says shape {shape} ({expected} bytes) but {len(raw) - header} bytes follow"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(array.copy())


def write_idx(path: str | Path, tensor: torch.Tensor) -> None:
    """Write a uint8 tensor as IDX (gzip when the name ends in .gz); used for tests and exports."""
    path = Path(path)
    array = tensor.to(torch.uint8).numpy()
    payload = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
