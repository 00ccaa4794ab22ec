"""Fast paths for the training step: mixed precision (autocast) and ``torch.compile``."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str):
    """Autocast for the forward pass and losses; fp32 (or a device without support) runs as is."""
    dtype = DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype is torch.float16:
        raise ValueError("precision fp16 needs a CUDA device; use bf16 on CPU")
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16 gradients need loss scaling; bf16 and fp32 do not."""
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def compiled(forward: nn.Module, enabled: bool, backend: str = "inductor") -> nn.Module:
    """``torch.compile(forward)`` when enabled; the uncompiled module keeps the weights and checkpoint names."""
    return torch.compile(forward, backend=backend) if enabled else forward
